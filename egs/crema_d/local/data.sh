#!/usr/bin/env bash
# CREMA-D data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] CREMA_D_DIR DATA_DIR
# CREMA_D_DIR is the CREMA-D root holding AudioWAV/ (audio fetched with git lfs) and the CSV files.
exec utils/corpus_data.sh "$0" local/prepare_crema_d.py "$@"
