#!/usr/bin/env bash
# RAVDESS (speech) data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] RAVDESS_DIR DATA_DIR
set -euo pipefail
four_class=false
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "usage: local/data.sh [--four-class true|false] RAVDESS_DIR DATA_DIR" >&2; exit 1
fi
corpus=$1 dir=$2
tmp=$dir.tmp
rm -rf "$tmp"
python3 local/prepare_ravdess.py --four-class "$four_class" "$corpus" "$tmp"
validate_data_dir.py --no-feats "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
