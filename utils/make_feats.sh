#!/usr/bin/env bash
# Compute features for a data dir in parallel jobs, Kaldi steps/make_mfcc.sh style.
#
#   utils/make_feats.sh [--nj N] [--cmd CMD] --config CONF DATA_IN DATA_OUT FEATDIR
#
# Copies DATA_IN's table files (all but feats.scp, utt2num_frames, conf.yaml, cmvn.scp) to
# DATA_OUT, splits DATA_IN into N parts by utterance (utils/split_data.py --per-utt ->
# DATA_IN/splitNutt/1..N), runs
#   $cmd JOB=1:N FEATDIR/log/make_feats_NAME.JOB.log \
#     python3 -m ser.bin.compute_feats --config CONF --write-num-frames \
#       DATA_IN/splitNutt/JOB FEATDIR/raw_feats_NAME.JOB
# (NAME = basename of DATA_OUT, so several data dirs can share FEATDIR), then writes
# DATA_OUT/utt2num_frames, DATA_OUT/conf.yaml (a copy of CONF, for the recipe's stage-skip check)
# and, last, DATA_OUT/feats.scp (paths absolute). Every output file is written under a temporary
# name and renamed; feats.scp appears only when all N jobs succeeded and it covers exactly the
# utterances of DATA_IN/wav.scp. Old feats.scp, utt2num_frames, conf.yaml and .complete in
# DATA_OUT are removed at the start, so a killed run never looks complete. Nothing is skipped:
# the recipe decides whether to run this.
#
# --config is the feature YAML (see ser/features), not a Kaldi shell config: it is taken out of
# the options before utils/parse_options.sh (which would source it) sees them.
# python3 must be the repository's venv (path.sh activates it).
set -euo pipefail

utils_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

nj=4
cmd=$utils_dir/run.py
help_message="Usage: $0 [--nj N] [--cmd CMD] --config CONF DATA_IN DATA_OUT FEATDIR
Computes the features of CONF (e.g. conf/feats/spec.yaml) for DATA_IN/wav.scp in N parallel jobs;
DATA_OUT gets DATA_IN's tables plus feats.scp, utt2num_frames and conf.yaml; the arks go to FEATDIR.
Options:
  --nj N         number of parallel jobs (default: $nj)
  --cmd CMD      job runner, Kaldi run.pl convention (default: utils/run.py)
  --config CONF  feature config YAML (required)"

die() { echo "make_feats.sh: error: $*" >&2; exit 1; }

# Take --config CONF out of the options (parse_options.sh would source it as shell code).
feat_config=
_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config=*) feat_config=${1#--config=}; shift ;;
    --config) [ $# -ge 2 ] || die "option --config needs a value"; feat_config=$2; shift 2 ;;
    --help|-h|--) break ;;
    --*=*) _opts+=("$1"); shift ;;
    --?*) _opts+=("$1"); shift; if [ $# -gt 0 ]; then _opts+=("$1"); shift; fi ;;
    *) break ;;
  esac
done
set -- ${_opts[@]+"${_opts[@]}"} "$@"
. "$utils_dir/parse_options.sh"

if [ $# -ne 3 ]; then
  printf '%s\n' "$help_message" >&2
  exit 1
fi
data_in=$1
data_out=$2
featdir=$3

[ -n "$feat_config" ] || die "--config CONF is required"
[ -f "$feat_config" ] || die "no such feature config: $feat_config"
[ -f "$data_in/wav.scp" ] || die "no wav.scp in data dir '$data_in'"
[[ $nj =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive integer, got '$nj'"
num_utts=$(wc -l < "$data_in/wav.scp")
[ "$num_utts" -gt 0 ] || die "$data_in/wav.scp is empty"
[ "$nj" -le "$num_utts" ] || die "--nj $nj is more than the $num_utts utterances of $data_in"

name=$(basename "$data_out")
mkdir -p "$data_out" "$featdir/log"
featdir=$(cd "$featdir" && pwd)  # feats.scp must not depend on the current directory

# Invalidate the previous result before anything else.
rm -f "$data_out/feats.scp" "$data_out/utt2num_frames" "$data_out/conf.yaml" "$data_out/.complete"

if [ "$(cd "$data_in" && pwd -P)" != "$(cd "$data_out" && pwd -P)" ]; then
  for f in "$data_in"/*; do
    [ -f "$f" ] || continue  # split dirs and other sub-directories stay behind
    case $(basename "$f") in
      feats.scp|utt2num_frames|conf.yaml|cmvn.scp) continue ;;
    esac
    cp "$f" "$data_out/"
  done
fi

# Features do not depend on the speaker, so split by utterance: balanced jobs, any nj <= #utts.
python3 "$utils_dir/split_data.py" --per-utt "$data_in" "$nj" || die "splitting $data_in into $nj parts failed"
sdata=$data_in/split${nj}utt
for n in $(seq "$nj"); do
  [ -f "$sdata/$n/wav.scp" ] || die "split_data.py did not create $sdata/$n/wav.scp"
done

echo "make_feats.sh: computing $(basename "$feat_config" .yaml) features for $data_in ($num_utts utterances, $nj jobs)" >&2
# $cmd is unquoted on purpose: it may hold options (e.g. "run.py --max-jobs-run 2").
# shellcheck disable=SC2086
$cmd JOB=1:"$nj" "$featdir/log/make_feats_$name.JOB.log" \
  python3 -m ser.bin.compute_feats --config "$feat_config" --write-num-frames \
    "$sdata/JOB" "$featdir/raw_feats_$name.JOB" \
  || die "feature extraction failed; see $featdir/log/make_feats_$name.*.log"

# Gather the per-job tables (sorted: each job's part is sorted, but take no chances).
tmp_scp=$data_out/.feats.scp.tmp
tmp_frames=$data_out/.utt2num_frames.tmp
tmp_conf=$data_out/.conf.yaml.tmp
trap 'rm -f "$tmp_scp" "$tmp_frames" "$tmp_conf"' EXIT
for n in $(seq "$nj"); do
  for ext in scp utt2num_frames; do
    [ -f "$featdir/raw_feats_$name.$n.$ext" ] || die "job $n left no $featdir/raw_feats_$name.$n.$ext"
  done
done
for n in $(seq "$nj"); do cat "$featdir/raw_feats_$name.$n.scp"; done | LC_ALL=C sort > "$tmp_scp"
for n in $(seq "$nj"); do cat "$featdir/raw_feats_$name.$n.utt2num_frames"; done | LC_ALL=C sort > "$tmp_frames"

num_feats=$(wc -l < "$tmp_scp")
if [ "$num_feats" -ne "$num_utts" ]; then
  die "feats.scp would have $num_feats lines but $data_in/wav.scp has $num_utts"
fi
if ! cmp -s <(cut -d' ' -f1 "$tmp_scp") <(cut -d' ' -f1 "$data_in/wav.scp" | LC_ALL=C sort); then
  die "the utterances of the features differ from those of $data_in/wav.scp"
fi

cp "$feat_config" "$tmp_conf"
mv "$tmp_frames" "$data_out/utt2num_frames"
mv "$tmp_conf" "$data_out/conf.yaml"
mv "$tmp_scp" "$data_out/feats.scp"  # last: its presence means the rest is complete
echo "make_feats.sh: wrote $num_feats utterances to $data_out/feats.scp (arks in $featdir)" >&2
