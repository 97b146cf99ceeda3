#!/usr/bin/env bash
# Creates tools/venv and installs `ser` with its pinned dependencies.
# Idempotent: when the venv already matches setup.py it only checks the imports.
#   tools/install.sh [--venv DIR]   (DIR defaults to $SER_VENV or tools/venv;
#                                    a DIR elsewhere is linked as tools/venv)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${SER_VENV:-$root/tools/venv}
python=${PYTHON:-python3}

while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "$0: unknown option '$1' (usage: tools/install.sh [--venv DIR])" >&2; exit 1 ;;
  esac
done

if [ "$venv" != "$root/tools/venv" ]; then
  mkdir -p "$venv"
  venv=$(cd "$venv" && pwd)
  if [ -e "$root/tools/venv" ] && [ ! -L "$root/tools/venv" ]; then
    echo "$0: tools/venv exists and is not a link; remove it or drop --venv" >&2; exit 1
  fi
  ln -sfn "$venv" "$root/tools/venv"
fi

# The stamp records what the venv was built from; a changed setup.py re-installs.
stamp_want=$( (cat "$root/setup.py" "$root/tools/install.sh"; echo "$root") | sha1sum | cut -d' ' -f1)
deps_want=$(cat "$root/setup.py" "$root/tools/install.sh" | sha1sum | cut -d' ' -f1)
deps_file=$venv/.ser-deps-stamp
stamp_file=$venv/.ser-install-stamp

check() {
  "$venv/bin/python" - "$root" <<'PY'
import importlib, os, sys
mods = ["torch", "torchaudio", "numpy", "scipy", "kaldiio", "soundfile", "sentencepiece",
        "transformers", "yaml", "tqdm", "matplotlib", "opensmile", "pytest", "ser"]
bad = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as e:  # report every broken import at once
        bad.append(f"{m} ({e})")
if bad:
    sys.exit("install.sh: cannot import: " + ", ".join(bad))
import ser, torch, torchaudio
root = os.path.realpath(sys.argv[1])
if not os.path.realpath(ser.__file__).startswith(root + os.sep):
    sys.exit(f"install.sh: ser is imported from {ser.__file__}, not from {root}")
print(f"install.sh: ok: torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
      f"cuda available: {torch.cuda.is_available()}")
PY
}

if [ -x "$venv/bin/python" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_want" ]; then
  echo "install.sh: $venv is up to date; checking imports"
  check
  exit 0
fi

if [ -x "$venv/bin/python" ] && [ -f "$deps_file" ] && [ "$(cat "$deps_file")" = "$deps_want" ]; then
  # Same dependencies, another checkout (e.g. a CI clone): only re-point the editable install.
  echo "install.sh: dependencies up to date; installing ser from $root"
  "$venv/bin/python" -m pip install --quiet --no-deps -e "$root"
else
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # torch first and alone, so that no other package pulls in a different build.
  "$venv/bin/python" -m pip install --quiet torch==2.11.0 torchaudio==2.11.0
  "$venv/bin/python" -m pip install --quiet -e "$root[test]"
fi
# The distribution was called `ser` before it became `ser-recipes` (same import name `ser`):
# an old install of it would shadow this one, so it goes.
if "$venv/bin/python" -m pip show ser >/dev/null 2>&1; then
  "$venv/bin/python" -m pip uninstall --quiet -y ser
fi
check
echo "$deps_want" > "$deps_file"
echo "$stamp_want" > "$stamp_file"
echo "install.sh: done: activate with '. $root/tools/venv/bin/activate'"
