#!/usr/bin/env bash
# Times utils/make_feats.sh over the whole shared EmoDB copy for each feature type and job count.
#
#   bench/bench_feats.sh [--emodb DIR] [--feats "spec mel"] [--njs "1 2"]
#
# Builds a temporary data dir (wav.scp, utt2spk, spk2utt, utt2emo) from DIR/wav/*.wav (default:
# /work/shared/data/emodb, or $EMODB), runs make_feats.sh with the recipe's configs
# (egs/emodb/conf/feats/<type>.yaml) and prints a table: feature type, nj, wall-clock seconds,
# utterances per second, real-time factor (seconds / total audio duration). Times include the
# job runner, the Python/torch start-up of each job, and the split and gather steps.
# Everything is written under a temporary directory that is removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
emodb=${EMODB:-/work/shared/data/emodb}
feats="spec mel"
njs="1 2"
while [ $# -gt 0 ]; do
  case "$1" in
    --emodb) emodb=$2; shift 2 ;;
    --feats) feats=$2; shift 2 ;;
    --njs) njs=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "bench_feats.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done
[ -d "$emodb/wav" ] || { echo "bench_feats.sh: no $emodb/wav" >&2; exit 1; }

export PATH=$repo/tools/venv/bin:$repo/utils:$PATH LC_ALL=C PYTHONUNBUFFERED=1
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_feats.XXXXXX")
trap 'rm -rf "$work"' EXIT

# EmoDB names: SSTTTEv.wav, speaker SS, emotion letter E.
data=$work/data/all
mkdir -p "$data"
for f in "$emodb"/wav/*.wav; do
  b=$(basename "$f" .wav)
  echo "${b:0:2}-$b $f"
done > "$data/wav.scp"
awk '{print $1, substr($1, 1, 2)}' "$data/wav.scp" > "$data/utt2spk"
python3 "$repo/utils/utt2spk_to_spk2utt.py" "$data/utt2spk" > "$data/spk2utt"
awk 'BEGIN { split("W anger L boredom E disgust A fear F happiness T sadness N neutral", a, " ");
             for (i = 1; i < 14; i += 2) emo[a[i]] = a[i + 1] }
     { print $1, emo[substr($1, 9, 1)] }' "$data/wav.scp" > "$data/utt2emo"
num_utts=$(wc -l < "$data/wav.scp")
audio_sec=$(python3 -c '
import sys, soundfile as sf
print(sum(sf.info(l.split(None, 1)[1].strip()).duration for l in open(sys.argv[1])))' "$data/wav.scp")

printf '# %s utterances, %.1f s of audio, %s CPU cores, load average %s\n' \
  "$num_utts" "$audio_sec" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %3s %9s %8s %8s\n' feats nj seconds utt/s RTF
for feat in $feats; do
  for nj in $njs; do
    conf=$repo/egs/emodb/conf/feats/$feat.yaml
    rm -rf "$data/split$nj"  # time the split too
    start=$(date +%s.%N)
    "$repo/utils/make_feats.sh" --nj "$nj" --config "$conf" \
      "$data" "$work/data/all_${feat}_nj$nj" "$work/feats/${feat}_nj$nj" 2> "$work/log.txt" \
      || { cat "$work/log.txt" >&2; exit 1; }
    end=$(date +%s.%N)
    n=$(wc -l < "$work/data/all_${feat}_nj$nj/feats.scp")
    [ "$n" -eq "$num_utts" ] || { echo "bench_feats.sh: $n of $num_utts utterances" >&2; exit 1; }
    awk -v f="$feat" -v nj="$nj" -v s="$start" -v e="$end" -v n="$n" -v a="$audio_sec" \
      'BEGIN { t = e - s; printf "%-6s %3d %9.2f %8.1f %8.4f\n", f, nj, t, n / t, t / a }'
  done
done
