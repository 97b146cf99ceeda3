#!/usr/bin/env bash
# Many seeds of a recipe's classifiers on one GPU within a fixed wall-clock budget: the (seed,
# model, fold) runs are queued seed by seed (every model's folds of seed 1, then of seed 2, ...),
# run --jobs at a time, and each run is scored on its clean test speaker as soon as it finishes,
# so that whatever the budget cuts off is a tail of whole seeds, never a hole in an early one.
# A run still training at the deadline is killed (no `done`: it counts as unfinished); no run
# starts after --launch-deadline. The programs and options are stage 3-4's (ser.bin.train,
# ser.bin.score), into the recipe's own experiment dirs exp/<set>/<feat>_<model>_none_<hash>.
#
# Usage (in a recipe dir whose stages 0-2 ran, e.g. egs/emodb):
#   ../../bench/gpu_seed_runs.sh [--seeds "1 2 3"] [--models "densenet densenet_lstm_highway"]
#       [--conf-dir conf/paper_bf16] [--feat mel] [--set all] [--jobs 14] [--deadline 480]
#       [--launch-deadline 420] [--out DIR] [--dry-run]
#   --deadline S         seconds after the start at which unfinished runs are killed
#   --launch-deadline S  seconds after the start after which no run starts
#   --out DIR            runs.tsv (one line per run: model, seed, fold, status, epochs, seconds),
#                        summary.txt and scores.tar.gz (the experiment dirs without models,
#                        checkpoints or figures: what ser.bin.archive_scores reads) (default $OUT)
#   --dry-run            on the CPU (--ngpu 0), 2 epochs per run: checks the driver, not the GPU
# On a machine that receives a copy of the checkout (size-limited, no package index): pack the
# features losslessly here (bench/gpu_check_tools.py pack-feats data/all_mel DEST, about 78 % of the
# arks), send DEST, data/ and wheels of kaldiio and soundfile (with cffi and pycparser), and run
# gpu_check_tools.py unpack-feats DEST data/all_mel feats/mel.ark there first. EmoDB's 7 classes,
# densenet and the proposed model at the paper's sizes on one H200: 14 runs at a time, about 60 s
# each, 12.7 runs a minute (egs/emodb/results/gpu_seeds_mel_2026-12-04).
# PYTHON (default python3) runs the programs; the repository is put on PYTHONPATH.
set -uo pipefail

seeds="1 2 3 4 5 6 7 8 9 10"
models="densenet densenet_lstm_highway"
conf_dir=conf/paper_bf16
feat=mel
set_name=all
jobs=14
deadline=480
launch_deadline=420
out=${OUT:-/tmp/gpu_seed_runs}
dry_run=false
while [ $# -gt 0 ]; do
  case $1 in
    --seeds) seeds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --conf-dir) conf_dir=$2; shift 2 ;;
    --feat) feat=$2; shift 2 ;;
    --set) set_name=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --deadline) deadline=$2; shift 2 ;;
    --launch-deadline) launch_deadline=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --dry-run|--dry_run) dry_run=true; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_seed_runs.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done
for o in jobs deadline launch_deadline; do
  [[ ${!o} =~ ^[0-9]+$ ]] || { echo "gpu_seed_runs.sh: --${o//_/-} must be a whole number, got '${!o}'" >&2; exit 1; }
done
[ $jobs -ge 1 ] || { echo "gpu_seed_runs.sh: --jobs must be at least 1" >&2; exit 1; }
for s in $seeds; do
  [[ $s =~ ^[0-9]+$ ]] || { echo "gpu_seed_runs.sh: --seeds: '$s' is not a seed (whole numbers, e.g. \"1 2 3\")" >&2; exit 1; }
done
root=$(cd "$(dirname "$0")/.." && pwd)
data=data/$set_name feats=data/${set_name}_$feat folds=data/${set_name}_folds exp=exp/$set_name
for f in $feats/feats.scp $folds/classes.txt $folds/1/train.list; do
  [ -f $f ] || { echo "gpu_seed_runs.sh: $PWD/$f not found: run the recipe's stages 0-2 first" >&2; exit 1; }
done
py=${PYTHON:-python3}
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 LC_ALL=C
SER_ROOT=$root
. $root/utils/recipe_helpers.sh   # conf_file and check_trained_on_folds, as stage 3 uses them
die() { echo "gpu_seed_runs.sh: $*" >&2; exit 1; }
ngpu=1 train_opts=
[ $dry_run = false ] || { ngpu=0; train_opts="--max-epochs 2"; }
mkdir -p "$out"
start=$(date +%s)

# each model's config and the recipe's experiment dir (stage 3's experiment_dir with --augs none;
# its classifier_hash, run with $py)
declare -A dir_of=() conf_of=()
for m in $models; do
  conf_of[$m]=$(conf_file $conf_dir train_$m.yaml) || exit 1
  hash=$($py -m ser.bin.train --config ${conf_of[$m]} --feats-dir $feats --fold-dir $folds/1 \
    --classes $folds/classes.txt --print-config-hash) || exit 1
  dir_of[$m]=$exp/${feat}_${m}_none_$hash
  check_trained_on_folds ${dir_of[$m]} $folds
  mkdir -p ${dir_of[$m]}/log
  echo "$m -> ${dir_of[$m]}"
done
nfolds=$(ls -d $folds/[0-9]* | wc -l)

# one_run MODEL SEED FOLD EXP_DIR CONFIG: train (ser.bin.train resumes a killed run and skips a
# finished one), then score clean; one line to runs.tsv
one_run() {
  local m=$1 s=$2 k=$3 dir=$4 conf=$5 t0 now status epochs=0 opts
  local run=$dir/fold.$k/seed$s
  read -r -a opts <<< "$train_opts"
  t0=$(date +%s)
  if [ $((t0 - start)) -ge $launch_deadline ]; then status=not_started
  else
    timeout --signal=KILL $((start + deadline - t0)) \
      $py -m ser.bin.train --config $conf --feats-dir $feats --fold-dir $folds/$k \
        --classes $folds/classes.txt --seed $s --num-threads 1 --ngpu $ngpu "${opts[@]}" \
        --outdir $run > $dir/log/train.seed$s.$k.log 2>&1
    if [ ! -f $run/done ]; then status=killed_or_failed
    else
      now=$(date +%s)
      timeout --signal=KILL $((start + deadline + 30 - now > 1 ? start + deadline + 30 - now : 1)) \
        $py -m ser.bin.score --feats-dir $feats --model-dir $run --utt-list $folds/$k/test.list \
          --data-dir $data --ngpu $ngpu --out $run/test_clean > $dir/log/score_clean.seed$s.$k.log 2>&1
      if [ -f $run/test_clean/done ]; then status=scored; else status=score_failed; fi
    fi
    [ ! -f $run/history.tsv ] || epochs=$(($(wc -l < $run/history.tsv) - 1))
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' $m $s $k $status $epochs $(($(date +%s) - t0)) >> "$out/runs.tsv"
}
export -f one_run
export start deadline launch_deadline feats folds data py ngpu out train_opts

printf 'model\tseed\tfold\tstatus\tepochs\tseconds\n' > "$out/runs.tsv"
for s in $seeds; do for m in $models; do for k in $(seq $nfolds); do
  echo "$m $s $k ${dir_of[$m]} ${conf_of[$m]}"
done; done; done | xargs -P $jobs -L 1 bash -c 'one_run "$@"' _
echo "all runs ended after $(( $(date +%s) - start )) s"

# the seeds whose every (model, fold) run is scored
{
  echo "# $(date '+%F %T'), $(( $(date +%s) - start )) s, jobs $jobs, deadline $deadline s, launch deadline $launch_deadline s"
  for m in $models; do echo "# $m: ${dir_of[$m]}"; done
  complete=
  for s in $seeds; do
    n=$(awk -F'\t' -v s=$s '$2 == s && $4 == "scored"' "$out/runs.tsv" | wc -l)
    echo "seed $s: $n of $(( nfolds * $(wc -w <<< "$models") )) runs scored"
    [ $n -eq $(( nfolds * $(wc -w <<< "$models") )) ] && complete="$complete $s"
  done
  echo "seeds with every run scored:$complete"
  awk -F'\t' 'NR > 1 && $4 == "scored" {n[$1]++; e[$1] += $5; t[$1] += $6}
    END {for (m in n) printf "%s: %d runs scored, mean %.1f epochs, mean %.1f s per run\n", m, n[m], e[m]/n[m], t[m]/n[m]}' "$out/runs.tsv"
} | tee "$out/summary.txt"
tar -czf "$out/scores.tar.gz" --exclude='*.pt' --exclude='checkpoints' --exclude='*.png' \
  $(for m in $models; do echo ${dir_of[$m]}; done) $folds $data/utt2spk $data/utt2emo
ls -la "$out"
