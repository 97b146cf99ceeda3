"""Kaldi-style data directories: table files, validation and manipulation."""
