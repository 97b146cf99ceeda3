#!/usr/bin/env bash
# CREMA-D data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] CREMA_D_DIR DATA_DIR
# CREMA_D_DIR is the CREMA-D root holding AudioWAV/ (audio fetched with git lfs) and the CSV files.
set -euo pipefail
four_class=false
help_message=$(sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//')
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "usage: local/data.sh [--four-class true|false] CREMA_D_DIR DATA_DIR" >&2; exit 1
fi
utils/make_data_dir.sh "$2" python3 local/prepare_crema_d.py --four-class "$four_class" "$1"
