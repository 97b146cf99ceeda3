#!/usr/bin/env bash
# EmoDB data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] EMODB_DIR DATA_DIR
exec utils/corpus_data.sh "$0" local/prepare_emodb.py "$@"
