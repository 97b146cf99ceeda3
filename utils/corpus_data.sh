#!/usr/bin/env bash
# The body of a corpus recipe's local/data.sh: runs its preparation program PREPARE through
# utils/make_data_dir.sh (validated; a failed run leaves no data dir behind).
#   exec utils/corpus_data.sh "$0" local/prepare_<corpus>.py "$@"     (in local/data.sh)
# CALLER (local/data.sh) takes [--four-class true|false] CORPUS_DIR DATA_DIR; its comment header
# is its --help text.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: utils/corpus_data.sh CALLER PREPARE [--four-class true|false] CORPUS_DIR DATA_DIR" >&2; exit 1
fi
caller=$1 prepare=$2; shift 2
help_message=$(sed -n '2,/^[^#]/p' "$caller" | grep '^#' | sed 's/^# \{0,1\}//')
four_class=false
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"
if [ $# -ne 2 ]; then
  echo "usage: $(sed -n 's/^#   \(local\/data.sh .*\)/\1/p' "$caller" | head -1)" >&2; exit 1
fi
"$(dirname "${BASH_SOURCE[0]}")/make_data_dir.sh" "$2" python3 "$prepare" --four-class "$four_class" "$1"
