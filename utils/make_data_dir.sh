#!/usr/bin/env bash
# Runs a data-preparation program into DATA_DIR.tmp, validates the result and only then
# replaces DATA_DIR with it, so a failed or killed preparation never leaves a data dir that
# looks complete (nor a stale DATA_DIR.tmp).
#   utils/make_data_dir.sh DATA_DIR PROGRAM [ARGS...]    (PROGRAM gets DATA_DIR.tmp as last argument)
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: utils/make_data_dir.sh DATA_DIR PROGRAM [ARGS...]" >&2; exit 1
fi
dir=${1%/}; shift
tmp=$dir.tmp
utils_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$@" "$tmp"
python3 "$utils_dir/validate_data_dir.py" --no-feats "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
