#!/usr/bin/env bash
# RAVDESS (speech) data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] RAVDESS_DIR DATA_DIR
set -euo pipefail
four_class=false
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "usage: local/data.sh [--four-class true|false] RAVDESS_DIR DATA_DIR" >&2; exit 1
fi
utils/make_data_dir.sh "$2" python3 local/prepare_ravdess.py --four-class "$four_class" "$1"
