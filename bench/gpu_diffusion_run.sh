#!/usr/bin/env bash
# A short paper-preset diffusion run on one GPU in bf16: train the denoiser for about --seconds
# on a fold's training speakers, then sample a small grid.
#
# Usage: bench/gpu_diffusion_run.sh [--seconds 240] [--config FILE] [--steps-per-s X] [--precision bf16]
#                                   [--set key.sub=value]... [--dry-run] MEL_DIR FOLD_DIR OUT_DIR
#   MEL_DIR   mel data dir: feats.scp, utt2spk, utt2emo [, text, conf.yaml] (e.g. egs/emodb/data/all4_mel)
#   FOLD_DIR  train.list, valid.list, test.list (e.g. egs/emodb/data/all4_folds/1)
#   OUT_DIR   model dir OUT_DIR/model (train.log, history.tsv, diagnostics/: error by t on the
#             fold's validation utterances, sample statistics, mel_grid.png), OUT_DIR/syn (8
#             generated segments) and OUT_DIR/report (MAD table, mel_grid.png against train.list)
#   --config  diffusion config (default egs/TEMPLATE/conf/tuning/diffusion.yaml, the paper preset); a
#             BERT conditioner is replaced by the offline sentencepiece one unless --bert is given
#             (bert-base-uncased is rarely available offline)
#   --steps-per-s  skip the probe: size max_steps = seconds x this. Without it a 40-step probe run
#             measures the rate first (~30 s), and max_steps = 85 % of the seconds left x rate.
#   --set     a config override passed to ser.bin.train_diffusion (repeatable), e.g.
#             --set process.prediction=v --set denoiser.pos_channels=16
#   --dry-run the same on the CPU with a tiny denoiser and a few steps (checks everything but CUDA)
# PYTHON (default python3) runs the programs; the repository is put on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=240
config=egs/TEMPLATE/conf/tuning/diffusion.yaml
rate=
precision=bf16
dry_run=false
bert=false
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --steps-per-s) rate=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --dry-run|--dry_run) dry_run=true; shift ;;
    --bert) bert=true; shift ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu_diffusion_run.sh: unknown option '$1'" >&2; exit 1 ;;
    *) break ;;
  esac
done
[ $# -eq 3 ] || { echo "usage: gpu_diffusion_run.sh [options] MEL_DIR FOLD_DIR OUT_DIR (see --help)" >&2; exit 1; }
mel=$1 fold=$2 out=$3
[ -f "$mel/feats.scp" ] || { echo "gpu_diffusion_run.sh: $mel/feats.scp not found" >&2; exit 1; }
[ -f "$fold/train.list" ] || { echo "gpu_diffusion_run.sh: $fold/train.list not found" >&2; exit 1; }
py=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
start=$(date +%s)
mkdir -p "$out"

# the run's config: the given one, sentencepiece conditioner unless --bert, tiny sizes for --dry-run
conf=$out/config.yaml
$py - "$config" "$conf" $bert $dry_run <<'EOF'
import sys, yaml
src, dst, bert, dry = sys.argv[1], sys.argv[2], sys.argv[3] == "true", sys.argv[4] == "true"
conf = yaml.safe_load(open(src))
if conf.get("conditioner", {}).get("type") == "bert" and not bert:
    conf["conditioner"] = {"type": "sentencepiece"}
if dry:
    conf["denoiser"] = {"channels": 32, "num_layers": 2, "num_res_blocks": 1, "heads": 2, "time_dim": 16,
                        "cond_dim": 16, "norm_groups": 8, **{k: v for k, v in conf.get("denoiser", {}).items()
                                                              if k == "pos_channels"}}
    conf["conditioner"] = {"type": "sentencepiece", "dim": 16, "layers": 1, "heads": 2}
    conf["batch_size"] = 4
    conf["diagnostics"] = {"segments": 4, "samples": 2, "sampling_steps": 5}
conf.update(checkpoint_every=500, log_every=20)
yaml.safe_dump(conf, open(dst, "w"), sort_keys=False)
EOF
if [ $dry_run = true ]; then ngpu=0; threads=1; else ngpu=1; threads=4; fi
train() {  # train OUTDIR MAX_STEPS [extra options]
  local dir=$1 steps=$2; shift 2
  $py -m ser.bin.train_diffusion --config "$conf" --feats-dir "$mel" --fold-dir "$fold" --seed 1 \
    --ngpu $ngpu --num-threads $threads --max-steps $steps --set precision=$precision ${sets[@]+"${sets[@]}"} "$@" \
    --outdir "$dir"
}

if [ -z "$rate" ]; then
  if [ $dry_run = true ]; then probe_steps=4; else probe_steps=40; fi
  echo "=== probe: $probe_steps steps to measure steps/s"
  train "$out/probe" $probe_steps --set log_every=$((probe_steps / 2)) --set diagnostics.samples=0 \
    > "$out/probe.log" 2>&1 || { tail -5 "$out/probe.log"; exit 1; }
  # the second log window: after CUDA/cuDNN warm-up
  rate=$(awk -F'\t' 'NR == 3 {print $6}' "$out/probe/history.tsv")
  rm -rf "$out/probe/checkpoints"
fi
left=$(( seconds - ($(date +%s) - start) ))
if [ $dry_run = true ]; then steps=6; else
  steps=$($py -c "print(max(20, int(0.85 * $left * $rate)))"); fi
echo "=== training: $steps steps (rate $rate steps/s, $left s left of $seconds), precision $precision"
train "$out/model" $steps 2>&1 | tr "\r" "\n" | grep -v "^diffusion:" | tee "$out/train.log" | grep -E "step [0-9]+/|diagnostics|finished" || true
[ -f "$out/model/done" ] || { echo "gpu_diffusion_run.sh: training did not finish" >&2; tail -5 "$out/train.log" >&2; exit 1; }

echo "=== sampling 8 segments (S = 50) and their report"
$py -m ser.bin.generate --model-dir "$out/model" --num-per-combination 1 --max-combinations 8 \
  --sampling-steps $([ $dry_run = true ] && echo 5 || echo 50) --seed 1 --ngpu $ngpu --num-threads $threads \
  --out-data "$out/syn" --out-feats "$out/syn/ark" 2>&1 | tail -2
$py -m ser.bin.diffusion_report --real-feats "$mel" --utt-list "$fold/train.list" --synthetic "$out/syn" \
  --out "$out/report" 2>&1 | tail -2
echo "=== history (step lr loss mse vb steps_per_s)"
tail -n 3 "$out/model/history.tsv"
echo "=== diagnostics ($out/model/diagnostics)"
cat "$out/model/diagnostics/by_t.tsv"
cat "$out/model/diagnostics/summary.json"
cat "$out/report/mad.tsv" 2>/dev/null || true
echo "=== done in $(( $(date +%s) - start )) s: $out/model/diagnostics/mel_grid.png, $out/report/mel_grid.png"
