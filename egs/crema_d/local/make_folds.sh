#!/usr/bin/env bash
# Stage 2 hook of run.sh: CREMA-D's actor folds (see local/make_actor_folds.py).
#   local/make_folds.sh DATA_DIR FOLDS_DIR
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: local/make_folds.sh DATA_DIR FOLDS_DIR" >&2; exit 1; }
python3 local/make_actor_folds.py --conf conf/folds.yaml "$1" "$2"
python3 -m ser.bin.check_folds "$2" --data "$1"
