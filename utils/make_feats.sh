#!/usr/bin/env bash
# Compute features for data dirs in parallel jobs, Kaldi steps/make_mfcc.sh style.
#
#   utils/make_feats.sh [--nj N] [--cmd CMD] --config CONF DATA_IN DATA_OUT FEATDIR
#   utils/make_feats.sh [--nj N] [--cmd CMD] --config CONF_1 .. --config CONF_K \
#       DATA_IN DATA_OUT_1 .. DATA_OUT_K [DATA_IN DATA_OUT_1 .. DATA_OUT_K ...] FEATDIR
#
# With K configs, the arguments before FEATDIR are groups of a source data dir and K output data
# dirs, one per config in order; an output "-" means that feature type is not wanted for that
# source (e.g. data/all data/all_spec data/all_mel data/all_snr0 data/all_snr0_spec -).
# For every output, copies its DATA_IN's table files (all but feats.scp, utt2num_frames, conf.yaml,
# cmvn.scp) to DATA_OUT. Splits every DATA_IN into N parts by utterance (utils/split_data.py
# --per-utt -> DATA_IN/splitNutt/1..N) and runs N jobs,
#   $cmd JOB=1:N FEATDIR/log/make_feats_NAME.JOB.log \
#     python3 -m ser.bin.compute_feats --config CONF_1 .. --config CONF_K --write-num-frames \
#       DATA_IN/splitNutt/JOB FEATDIR/raw_feats_NAME_1.JOB .. [DATA_IN/splitNutt/JOB ...]
# (NAME_k = basename of DATA_OUT_k, so several data dirs can share FEATDIR; the log is named after
# the first output): job n reads each recording of part n of every source once, resamples it once
# per sample rate and writes every wanted feature type, so a type costs no extra start-up, read or
# resampling (the matrices are those of one run per config). Then writes, per output,
# DATA_OUT/utt2num_frames, DATA_OUT/conf.yaml (a copy of its CONF, for the recipe's stage-skip
# check) and, last, DATA_OUT/feats.scp (paths absolute). Every output file is written under a
# temporary name and renamed; a feats.scp appears only when all N jobs succeeded and it covers
# exactly the utterances of its DATA_IN/wav.scp. Old feats.scp, utt2num_frames, conf.yaml and
# .complete of every DATA_OUT are removed at the start, so a killed run never looks complete.
# Nothing is skipped: the recipe decides what to compute.
#
# --config is the feature YAML (see ser/features), not a Kaldi shell config: it is taken out of
# the options before utils/parse_options.sh (which would source it) sees them.
# python3 must be the repository's venv (path.sh activates it).
set -euo pipefail

utils_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

nj=4
cmd=$utils_dir/run.py
help_message="Usage: $0 [--nj N] [--cmd CMD] --config CONF [--config CONF ...] DATA_IN DATA_OUT [DATA_OUT ...] [DATA_IN DATA_OUT ...] FEATDIR
Computes the features of each CONF (e.g. conf/feats/spec.yaml) for DATA_IN/wav.scp in N parallel
jobs that read each recording once; with K configs each DATA_IN is followed by K output dirs, one
per CONF ('-': none). Each DATA_OUT gets DATA_IN's tables plus feats.scp, utt2num_frames and
conf.yaml; the arks go to FEATDIR.
Options:
  --nj N         number of parallel jobs (default: $nj)
  --cmd CMD      job runner, Kaldi run.pl convention (default: utils/run.py)
  --config CONF  feature config YAML (required; repeat for several feature types)"

die() { echo "make_feats.sh: error: $*" >&2; exit 1; }

# Take --config CONF out of the options (parse_options.sh would source it as shell code).
feat_configs=()
_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config=*) feat_configs+=("${1#--config=}"); shift ;;
    --config) [ $# -ge 2 ] || die "option --config needs a value"; feat_configs+=("$2"); shift 2 ;;
    --help|-h|--) break ;;
    --*=*) _opts+=("$1"); shift ;;
    --?*) _opts+=("$1"); shift; if [ $# -gt 0 ]; then _opts+=("$1"); shift; fi ;;
    *) break ;;
  esac
done
set -- ${_opts[@]+"${_opts[@]}"} "$@"
. "$utils_dir/parse_options.sh"

k=${#feat_configs[@]}
if [ $# -lt 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
[ "$k" -gt 0 ] || die "--config CONF is required"
featdir=${!#}
args=("${@:1:$#-1}")
[ $(( ${#args[@]} % (k + 1) )) -eq 0 ] || \
  die "with $k --config option(s) give groups of DATA_IN and $k DATA_OUT(s) before FEATDIR, got ${#args[@]} argument(s)"
for conf in "${feat_configs[@]}"; do
  [ -f "$conf" ] || die "no such feature config: $conf"
done
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive integer, got '$nj'"

# One entry per wanted output: its source, output dir and config index.
srcs=() outs=() confs=() names=()
declare -A seen_name=() seen_out=()
for ((g = 0; g < ${#args[@]}; g += k + 1)); do
  src=${args[$g]} any=false
  [ -f "$src/wav.scp" ] || die "no wav.scp in data dir '$src'"
  num_utts=$(wc -l < "$src/wav.scp")
  [ "$num_utts" -gt 0 ] || die "$src/wav.scp is empty"
  [ "$nj" -le "$num_utts" ] || die "--nj $nj is more than the $num_utts utterances of $src"
  for ((c = 0; c < k; c++)); do
    out=${args[$((g + 1 + c))]}
    [ "$out" != - ] || continue
    any=true
    name=$(basename "$out")
    [ -z "${seen_name[$name]:-}" ] || die "two outputs named '$name' ($out, ${seen_name[$name]}): their arks would share names in $featdir"
    seen_name[$name]=$out
    srcs+=("$src") outs+=("$out") confs+=("${feat_configs[$c]}") names+=("$name")
  done
  $any || die "data dir '$src': every output is '-' (nothing to compute)"
done

mkdir -p "$featdir/log"
featdir=$(cd "$featdir" && pwd)  # feats.scp must not depend on the current directory

for i in "${!outs[@]}"; do
  src=${srcs[$i]} out=${outs[$i]}
  mkdir -p "$out"
  real=$(cd "$out" && pwd -P)
  [ -z "${seen_out[$real]:-}" ] || die "output dir '$out' is given twice"
  seen_out[$real]=1
  # Invalidate the previous result before anything else.
  rm -f "$out/feats.scp" "$out/utt2num_frames" "$out/conf.yaml" "$out/.complete"
done
for i in "${!outs[@]}"; do
  src=${srcs[$i]} out=${outs[$i]}
  if [ "$(cd "$src" && pwd -P)" != "$(cd "$out" && pwd -P)" ]; then
    for f in "$src"/*; do
      [ -f "$f" ] || continue  # split dirs and other sub-directories stay behind
      case $(basename "$f") in
        feats.scp|utt2num_frames|conf.yaml|cmvn.scp) continue ;;
      esac
      cp "$f" "$out/"
    done
  fi
done

# Features do not depend on the speaker, so split by utterance: balanced jobs, any nj <= #utts.
job_args=()
for ((g = 0; g < ${#args[@]}; g += k + 1)); do
  src=${args[$g]}
  python3 "$utils_dir/split_data.py" --per-utt "$src" "$nj" || die "splitting $src into $nj parts failed"
  for n in $(seq "$nj"); do
    [ -f "$src/split${nj}utt/$n/wav.scp" ] || die "split_data.py did not create $src/split${nj}utt/$n/wav.scp"
  done
  job_args+=("$src/split${nj}utt/JOB")
  for ((c = 0; c < k; c++)); do
    out=${args[$((g + 1 + c))]}
    if [ "$out" = - ]; then job_args+=(-); else job_args+=("$featdir/raw_feats_$(basename "$out").JOB"); fi
  done
done
conf_opts=()
for conf in "${feat_configs[@]}"; do conf_opts+=(--config "$conf"); done

types=$(for conf in "${feat_configs[@]}"; do basename "$conf" .yaml; done | tr '\n' ' ')
echo "make_feats.sh: computing ${types% } features for $(printf '%s\n' "${srcs[@]}" | uniq | tr '\n' ' ')(${#outs[@]} output dirs, $nj jobs)" >&2
log=$featdir/log/make_feats_${names[0]}.JOB.log
# $cmd is unquoted on purpose: it may hold options (e.g. "run.py --max-jobs-run 2").
# shellcheck disable=SC2086
$cmd JOB=1:"$nj" "$log" \
  python3 -m ser.bin.compute_feats "${conf_opts[@]}" --write-num-frames "${job_args[@]}" \
  || die "feature extraction failed$(grep -h -m1 ' error: ' "$featdir"/log/make_feats_"${names[0]}".*.log \
         2>/dev/null | head -n1 | sed 's/^/: /'); see $featdir/log/make_feats_${names[0]}.*.log"

# Gather the per-job tables of every output (sorted: each job's part is sorted, but take no chances).
tmp_files=()
trap 'rm -f ${tmp_files[@]+"${tmp_files[@]}"}' EXIT
for i in "${!outs[@]}"; do
  name=${names[$i]}
  for n in $(seq "$nj"); do
    for ext in scp utt2num_frames; do
      [ -f "$featdir/raw_feats_$name.$n.$ext" ] || die "job $n left no $featdir/raw_feats_$name.$n.$ext"
    done
  done
done
for i in "${!outs[@]}"; do
  src=${srcs[$i]} out=${outs[$i]} name=${names[$i]}
  tmp_scp=$out/.feats.scp.tmp tmp_frames=$out/.utt2num_frames.tmp tmp_conf=$out/.conf.yaml.tmp
  tmp_files+=("$tmp_scp" "$tmp_frames" "$tmp_conf")
  for n in $(seq "$nj"); do cat "$featdir/raw_feats_$name.$n.scp"; done | LC_ALL=C sort > "$tmp_scp"
  for n in $(seq "$nj"); do cat "$featdir/raw_feats_$name.$n.utt2num_frames"; done | LC_ALL=C sort > "$tmp_frames"
  num_utts=$(wc -l < "$src/wav.scp")
  num_feats=$(wc -l < "$tmp_scp")
  if [ "$num_feats" -ne "$num_utts" ]; then
    die "$out/feats.scp would have $num_feats lines but $src/wav.scp has $num_utts"
  fi
  if ! cmp -s <(cut -d' ' -f1 "$tmp_scp") <(cut -d' ' -f1 "$src/wav.scp" | LC_ALL=C sort); then
    die "the utterances of the features in $out differ from those of $src/wav.scp"
  fi
  cp "${confs[$i]}" "$tmp_conf"
  mv "$tmp_frames" "$out/utt2num_frames"
  mv "$tmp_conf" "$out/conf.yaml"
  mv "$tmp_scp" "$out/feats.scp"  # last: its presence means the rest is complete
  echo "make_feats.sh: wrote $num_feats utterances to $out/feats.scp (arks in $featdir)" >&2
done
