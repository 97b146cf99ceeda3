#!/usr/bin/env bash
# GPU readiness check of both trainers, in one command that finishes in under 8 minutes on a
# machine with one GPU:
#   1. the classifier trainer (paper-size densenet_lstm_highway, EmoDB 4 classes, mel, fold 1)
#      in bf16 and fp16 for ~200 optimizer steps: finite losses, and a run killed after epoch 10
#      and resumed equal to the uninterrupted run;
#   2. the diffusion trainer (CPU preset) in bf16 and fp16 for 120 steps, killed after step 60
#      and resumed, compared the same way;
#   3. paper-size throughput of every classifier (bench/bench_models.py) and of the paper-preset
#      denoiser (bench/bench_diffusion.py);
#   4. a one-process torchrun launch: an NCCL all_reduce and the classifier trainer under torchrun;
#   5. a paper-preset denoiser trained for PAPER_SECONDS (default 120) with the options of the CPU
#      route (v-prediction, clamped variance interpolation, frame-position channels), then
#      sampled (bench/gpu_diffusion_run.sh).
# Every section runs even when an earlier one fails; the summary at the end lists them.
#
# Usage: bench/gpu_check.sh [--dry-run] [--data DIR] [--out DIR]
#   --data DIR  carried data: DIR/mel (mel data dir whose feats.scp says @DATA@ for DIR),
#               DIR/fold1, DIR/classes.txt, DIR/feats/*.ark (default .gpu_data). Made from a
#               recipe's data by bench/gpu_check_tools.py carry, e.g. after EmoDB's stage 2:
#                 tools/venv/bin/python bench/gpu_check_tools.py carry egs/emodb/data/all4_mel egs/emodb/data/all4_folds/1 \
#                   egs/emodb/data/all4_folds/classes.txt .gpu_data
#   --out DIR   logs, histories and figures (default $OUT, else /tmp/gpu_check)
#   --dry-run   the same sections on the CPU with tiny sizes (fp16 must then be refused): checks
#               everything but CUDA
# PYTHON (default python3) runs the programs; the repository is put on PYTHONPATH. ONLY=REGEX runs
# just the sections whose names match (e.g. ONLY='diffusion' for a quick re-check).
set -uo pipefail
cd "$(dirname "$0")/.."

dry_run=false
data=.gpu_data
out=${OUT:-/tmp/gpu_check}
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run|--dry_run) dry_run=true; shift ;;
    --data) data=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done
[ -f "$data/mel/feats.scp" ] || { echo "gpu_check.sh: $data/mel/feats.scp not found (--data)" >&2; exit 1; }
py=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$out"
work=$(mktemp -d /tmp/gpu_check.XXXXXX)
tools="$py bench/gpu_check_tools.py"
summary=()
start_all=$(date +%s)

# section NAME COMMAND...: run it, time it, record PASS/FAIL
section() {
  local name=$1; shift
  [[ $name =~ ${ONLY:-.} ]] || return 0
  local t0=$(date +%s)
  echo "=== $name"
  if "$@"; then summary+=("PASS $name ($(( $(date +%s) - t0 )) s)")
  else summary+=("FAIL $name ($(( $(date +%s) - t0 )) s)"); fi
}

if [ $dry_run = true ]; then
  ngpu=0; device=cpu; precisions="bf16 fp32"; refused=fp16
  cls_conf=egs/TEMPLATE/conf/train_densenet_lstm_highway.yaml
  cls_opts=(--max-epochs 3 --set max_train_segments_per_epoch=64); kill_epoch=1
  dif_opts=(--max-steps 4 --set checkpoint_every=2 --set log_every=1 --set batch_size=2
            --set denoiser.channels=16 --set denoiser.num_layers=2 --set denoiser.num_res_blocks=1
            --set denoiser.heads=2 --set denoiser.time_dim=16 --set denoiser.cond_dim=16
            --set denoiser.norm_groups=4); kill_step=2
  bench_cls=(--sizes cpu --batch 2 --frames 32 --steps 1 --warmup 0)
  bench_dif=(--batch-size 2 --train-steps 1 --sampling-steps 2)
  paper_seconds=20
else
  ngpu=1; device=cuda; precisions="bf16 fp16"; refused=
  cls_conf=egs/TEMPLATE/conf/tuning/train_densenet_lstm_highway.yaml
  cls_opts=(--max-epochs 25); kill_epoch=10
  dif_opts=(--max-steps 120 --set checkpoint_every=30 --set log_every=20); kill_step=60
  bench_cls=(--sizes paper --batch 32 --steps 5 --warmup 3 --threads 4)
  bench_dif=(--batch-size 16 --train-steps 10 --sampling-steps 50)
  paper_seconds=${PAPER_SECONDS:-120}
fi

ONLY=. section environment $tools env
nvidia-smi -L 2>/dev/null || true
ONLY=. section "carried data" $tools materialise "$data" "$work/data"
d=$work/data
cls_args=(--config $cls_conf --feats-dir $d/mel --fold-dir $d/fold1 --classes $d/classes.txt --ngpu $ngpu
          --num-threads 4 "${cls_opts[@]}")
dif_args=(--config egs/emodb/conf/diffusion.yaml --feats-dir $d/mel --fold-dir $d/fold1 --ngpu $ngpu
          --num-threads 4 "${dif_opts[@]}")

# kill_and_resume MODULE KILL_ENV KILL_AT DIR ARGS...: uninterrupted run in DIR/full; a run in
# DIR/cut killed (exit 75) after KILL_AT, then resumed; their checkpoints must be equal
kill_and_resume() {
  local module=$1 env=$2 at=$3 dir=$4; shift 4
  $py -m $module "$@" --outdir $dir/full > $dir.full.log 2>&1 || { tail -3 $dir.full.log; return 1; }
  env $env=$at $py -m $module "$@" --outdir $dir/cut > $dir.cut.log 2>&1
  local rc=$?
  [ $rc -eq 75 ] || { echo "killed run exited $rc, not 75"; tail -3 $dir.cut.log; return 1; }
  $py -m $module "$@" --outdir $dir/cut >> $dir.cut.log 2>&1 || { tail -3 $dir.cut.log; return 1; }
  grep -h "resumed from" $dir/cut/*.log | head -1
  $tools compare-checkpoints $dir/full/checkpoints/last.pt $dir/cut/checkpoints/last.pt
}

# each check's losses must be finite (history exits 1 otherwise)
classifier_check() {
  local p=$1
  kill_and_resume ser.bin.train SER_TRAIN_KILL_AFTER_EPOCH $kill_epoch $work/cls_$p "${cls_args[@]}" \
    --set precision=$p || return 1
  grep -h "time" $work/cls_$p/full/train.log | tail -1
  cp $work/cls_$p/full/history.tsv "$out/classifier_${p}_history.tsv"
  $tools history $work/cls_$p/full/history.tsv train_loss valid_loss valid_uar
}
diffusion_check() {
  local p=$1
  kill_and_resume ser.bin.train_diffusion SER_TRAIN_KILL_AFTER_STEP $kill_step $work/dif_$p "${dif_args[@]}" \
    --set precision=$p || return 1
  $tools history $work/dif_$p/full/history.tsv loss mse steps_per_s
}
for p in $precisions; do
  section "classifier $p: train + kill/resume" classifier_check $p
  section "diffusion $p: train + kill/resume" diffusion_check $p
done
if [ -n "$refused" ]; then
  refuse_fp16() {
    ! $py -m ser.bin.train "${cls_args[@]}" --set precision=fp16 --outdir $work/refused > $work/refused.log 2>&1 &&
      [ "$(wc -l < $work/refused.log)" -eq 1 ] && grep "fp16 needs a CUDA device" $work/refused.log
  }
  section "fp16 refused on the CPU in one line" refuse_fp16
fi

section "classifier throughput" $py bench/bench_models.py --device $device "${bench_cls[@]}"
paper_conf=$work/diffusion_paper.yaml
# the paper's BERT conditioner needs bert-base-uncased locally: the sentencepiece one stands in
$py - egs/TEMPLATE/conf/tuning/diffusion.yaml $paper_conf <<'EOF'
import sys, yaml
conf = yaml.safe_load(open(sys.argv[1]))
conf["conditioner"] = {"type": "sentencepiece"}
yaml.safe_dump(conf, open(sys.argv[2], "w"), sort_keys=False)
EOF
if [ $dry_run = true ]; then
  section "denoiser throughput" $py bench/bench_diffusion.py --config egs/emodb/conf/diffusion.yaml --ngpu 0 "${bench_dif[@]}"
else
  section "denoiser throughput (paper preset)" $py bench/bench_diffusion.py --config $paper_conf --ngpu 1 "${bench_dif[@]}"
fi

section "torchrun: all_reduce" $py -m torch.distributed.run --standalone --nproc_per_node 1 \
  bench/gpu_check_tools.py nccl $device
torchrun_train() {
  $py -m torch.distributed.run --standalone --nproc_per_node 1 -m ser.bin.train "${cls_args[@]}" \
    --max-epochs 2 --set precision=${precisions%% *} --outdir $work/torchrun > $work/torchrun.log 2>&1 ||
    { tail -5 $work/torchrun.log; return 1; }
  $tools history $work/torchrun/history.tsv train_loss valid_uar
}
section "torchrun: classifier trainer" torchrun_train

if [ -x bench/gpu_diffusion_run.sh ]; then
  section "paper-preset diffusion run (${paper_seconds} s)" timeout $((paper_seconds + 120)) \
    bench/gpu_diffusion_run.sh --seconds $paper_seconds --config $paper_conf $([ $dry_run = true ] && echo --dry-run) \
    --set process.prediction=v --set process.variance_bound=clamp --set denoiser.pos_channels=16 \
    $d/mel $d/fold1 "$out/diffusion_paper"
fi

echo "=== summary ($(( $(date +%s) - start_all )) s)"
printf '%s\n' "${summary[@]}"
rm -rf "$work"
! printf '%s\n' "${summary[@]}" | grep -q '^FAIL'
