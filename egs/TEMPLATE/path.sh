# Sourced by run.sh: the repository's venv and utils/ on PATH.
SER_ROOT=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/utils/.." && pwd)  # through the utils link
if [ ! -f "$SER_ROOT/tools/venv/bin/activate" ]; then
  echo "path.sh: $SER_ROOT/tools/venv is missing: run tools/install.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$SER_ROOT/tools/venv/bin/activate"
export PATH=$SER_ROOT/utils:$PATH
# This checkout's package first: a worktree sharing the venv (whose editable install points at
# another checkout) must run its own code.
export PYTHONPATH=$SER_ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
export LC_ALL=C
