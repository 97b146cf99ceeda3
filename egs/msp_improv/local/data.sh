#!/usr/bin/env bash
# MSP-IMPROV data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] MSP_IMPROV_DIR DATA_DIR
# MSP_IMPROV_DIR is the release root (Evalution.txt and Audio/session1..6). MSP-IMPROV has only
# the 4 classes: --four-class true and false give the same data.
exec utils/corpus_data.sh "$0" local/prepare_msp_improv.py "$@"
