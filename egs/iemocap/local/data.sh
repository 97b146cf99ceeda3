#!/usr/bin/env bash
# IEMOCAP data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] [--improvised-only true|false] IEMOCAP_DIR DATA_DIR
# IEMOCAP_DIR is the IEMOCAP_full_release directory (Session1..Session5). The default of
# --improvised-only is set in local/data.conf (run.sh passes only --four-class).
set -euo pipefail
four_class=false
improvised_only=false
. local/data.conf
help_message=$(sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//')
. utils/parse_options.sh
if [ $# -ne 2 ]; then
  echo "usage: local/data.sh [--four-class true|false] [--improvised-only true|false] IEMOCAP_DIR DATA_DIR" >&2
  exit 1
fi
utils/make_data_dir.sh "$2" python3 local/prepare_iemocap.py --four-class "$four_class" --improvised-only "$improvised_only" \
  "$1"
