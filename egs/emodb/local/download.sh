#!/usr/bin/env bash
# Downloads and unpacks the official EmoDB archive into DIR (used when EMODB is not set).
#   local/download.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: local/download.sh DIR" >&2; exit 1; }
dir=$1
url=http://emodb.bilderbar.info/download/download.zip
if [ -d "$dir/wav" ] && [ -n "$(ls "$dir/wav" 2>/dev/null)" ]; then
  echo "local/download.sh: $dir/wav exists; not downloading"; exit 0
fi
mkdir -p "$dir"
if ! curl -fsSL --connect-timeout 10 --max-time 600 -o "$dir/download.zip.part" "$url" 2>/dev/null; then
  rm -f "$dir/download.zip.part"
  echo "local/download.sh: cannot download EmoDB ($url): set EMODB to your copy of the corpus (the directory holding wav/)" >&2
  exit 1
fi
mv "$dir/download.zip.part" "$dir/download.zip"
python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$dir/download.zip" "$dir"
rm "$dir/download.zip"
