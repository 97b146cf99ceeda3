#!/usr/bin/env bash
# MSP-IMPROV data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] MSP_IMPROV_DIR DATA_DIR
# MSP_IMPROV_DIR is the release root (Evalution.txt and Audio/session1..6). MSP-IMPROV has only
# the 4 classes: --four-class true and false give the same data.
set -euo pipefail
four_class=false
help_message=$(sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//')
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "usage: local/data.sh [--four-class true|false] MSP_IMPROV_DIR DATA_DIR" >&2; exit 1
fi
utils/make_data_dir.sh "$2" python3 local/prepare_msp_improv.py --four-class "$four_class" "$1"
