"""Evaluation: speaker folds, metrics (UAR, WA), scoring outputs and the RESULTS.md report."""
