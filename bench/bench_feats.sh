#!/usr/bin/env bash
# CPU time of the recipes' stage 1 (features) on the whole shared EmoDB copy, against a plain
# single-process librosa loop doing the same work (bench/feats_librosa_baseline.py).
#
#   bench/bench_feats.sh [--emodb DIR] [--njs "2 1"] [--repeat 2] [--res-types soxr_hq]
#
# Prepares a copy of egs/emodb on DIR (default: /work/shared/data/emodb, or $EMODB) with stage 0,
# then times, --repeat times each:
#   - the librosa loop (skipped when librosa is not installed: pip install -e .[bench]): read,
#     resample to 16 kHz, spec and mel of every file; one row per --res-types entry with one
#     thread (OMP/OPENBLAS/MKL_NUM_THREADS=1, as stage 1 runs its jobs), the reference of the
#     ratios, and one row with the libraries' default threads: on a loaded machine their
#     OpenBLAS threads spin and that row's CPU time grows several-fold without more work done;
#   - ./run.sh --stage 1 --stop_stage 1 --nj N (defaults: spec and mel of data/all, one
#     make_feats.sh call, N jobs each reading every file of its part once; its feature dirs and
#     arks are removed before each run), for each N of --njs;
#   - the same features as separate passes: one make_feats.sh call per type (nj 2), as stage 1 did
#     before one job wrote every type.
# CPU = user + sys seconds of the command and every process it waited for (bash's `time`), which
# machine load inflates less than wall time; ratio = mean CPU of the one-thread librosa loop (first
# --res-types entry) / this CPU, both measured in this run. The last lines compare the first --njs
# entry with both librosa rows.
# Everything is written under a temporary directory that is removed at the end.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
emodb=${EMODB:-/work/shared/data/emodb}
njs="2 1"
repeat=2
res_types=soxr_hq
while [ $# -gt 0 ]; do
  case "$1" in
    --emodb) emodb=$2; shift 2 ;;
    --njs) njs=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --res-types) res_types=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench_feats.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done
[ -d "$emodb/wav" ] || { echo "bench_feats.sh: no $emodb/wav" >&2; exit 1; }
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "bench_feats.sh: --repeat must be a positive integer" >&2; exit 1; }

py=$repo/tools/venv/bin/python
load0=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_feats.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A copy of the EmoDB recipe (files, not links into egs/), data/all from its own stage 0.
recipe=$work/emodb
mkdir -p "$recipe"
for f in conf local db.sh cmd.sh path.sh run.sh; do cp -rL "$repo/egs/emodb/$f" "$recipe/"; done
ln -s "$repo/utils" "$recipe/utils"
(cd "$recipe" && EMODB=$emodb ./run.sh --stop_stage 0 > "$work/stage0.log" 2>&1) \
  || { tail -5 "$work/stage0.log" >&2; exit 1; }
wavs=()
while read -r _ path; do wavs+=("$path"); done < "$recipe/data/all/wav.scp"
audio_sec=$("$py" -c '
import sys, soundfile as sf
print(sum(sf.info(p).duration for p in sys.argv[1:]))' "${wavs[@]}")

# timed CMD...: runs CMD (output to $work/cmd.log); sets cpu and wall (seconds).
timed() {
  local u s r
  { TIMEFORMAT='%U %S %R'; time "$@" > "$work/cmd.log" 2>&1; } 2> "$work/time.txt" \
    || { echo "bench_feats.sh: failed: $*" >&2; tail -5 "$work/cmd.log" >&2; exit 1; }
  read -r u s r < "$work/time.txt"
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
  wall=$r
}
stage1() {  # stage1 NJ: run.sh's stage 1 from scratch
  rm -rf "$recipe/data/all_spec" "$recipe/data/all_mel" "$recipe/feats"
  (cd "$recipe" && EMODB=$emodb ./run.sh --stage 1 --stop_stage 1 --nj "$1")
}
separate() {  # one make_feats.sh call per type, nj 2
  rm -rf "$work/sep"
  (cd "$recipe" && . ./path.sh && for f in spec mel; do
     utils/make_feats.sh --nj 2 --config "$repo/egs/TEMPLATE/conf/feats/$f.yaml" data/all "$work/sep/all_$f" "$work/sep/feats" || exit 1
   done)
}

rows=()      # "label|cpu|wall"
add_row() { rows+=("$1|$cpu|$wall"); }
have_librosa=true
"$py" -c 'import librosa' 2>/dev/null || have_librosa=false
for k in $(seq "$repeat"); do
  if $have_librosa; then
    for rt in $res_types; do
      timed env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
        "$py" "$repo/bench/feats_librosa_baseline.py" --res-type "$rt" "${wavs[@]}"
      add_row "librosa loop ($rt), 1 thread"
    done
    timed "$py" "$repo/bench/feats_librosa_baseline.py" --res-type "${res_types%% *}" "${wavs[@]}"
    add_row "librosa loop (${res_types%% *}), default threads"
  fi
  for nj in $njs; do
    timed stage1 "$nj"
    add_row "run.sh stage 1, spec+mel, nj=$nj"
  done
  timed separate
  add_row "separate passes (make_feats.sh per type), nj=2"
done

base_rt=${res_types%% *}
mean_cpu() { printf '%s\n' "${rows[@]}" | awk -F'|' -v l="$1" '$1 == l { s += $2; n++ } END { if (n) printf "%.4f", s / n }'; }
base=$(mean_cpu "librosa loop ($base_rt), 1 thread")
base_mt=$(mean_cpu "librosa loop ($base_rt), default threads")
printf '# %s utterances, %.1f s of audio, %s CPU cores, load average %s at the start, %s at the end\n' \
  "${#wavs[@]}" "$audio_sec" "$(nproc)" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '# cpu_s = user+sys of the command and its children; ratio = librosa (%s, 1 thread) mean cpu_s / cpu_s\n' "$base_rt"
printf '%-50s %7s %7s %7s\n' what cpu_s wall_s ratio
for row in "${rows[@]}"; do
  IFS='|' read -r label c w <<< "$row"
  awk -v l="$label" -v c="$c" -v w="$w" -v b="$base" \
    'BEGIN { r = (b == "") ? "-" : sprintf("%.2f", b / c); printf "%-50s %7.2f %7.2f %7s\n", l, c, w, r }'
done
if [ -n "$base" ]; then
  nj=${njs%% *}
  s1=$(mean_cpu "run.sh stage 1, spec+mel, nj=$nj")
  awk -v s="$s1" -v b="$base" -v m="$base_mt" -v nj="$nj" 'BEGIN {
    printf "stage 1 (nj=%s): %.2f CPU s; librosa loop, 1 thread: %.2f CPU s, ratio %.2f; default threads: %.2f CPU s, ratio %.2f (target >= 4)\n", nj, s, b, b / s, m, m / s }'
else
  echo "librosa is not installed (pip install -e .[bench]): no baseline, no ratio"
fi
