#!/usr/bin/env bash
# RAVDESS (speech) data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] RAVDESS_DIR DATA_DIR
exec utils/corpus_data.sh "$0" local/prepare_ravdess.py "$@"
