#!/usr/bin/env bash
# Speech emotion recognition recipe (the same run.sh in every egs/<corpus>; only local/, conf/ and
# db.sh differ). Stages:
#   0 data preparation (local/data.sh)   1 features (+ speed-perturbed and noisy copies)
#   2 leave-one-speaker-out folds        3 training (per fold x repeat jobs; with synthetic
#   4 scoring (clean, noisy, attacked)     augmentation first the diffusion model and its samples)
#   5 RESULTS.md
# Usage: ./run.sh [--stage N] [--stop_stage N] [--models "cnn densenet_lstm_highway"] [--augs "none mixup"] ...
set -euo pipefail

stage=0
stop_stage=100
nj=2                   # parallel jobs for feature extraction
four_class=false       # true: the papers' 4 classes (anger, happiness, neutral, sadness)
feats="spec mel"       # feature types to extract (conf/feats/<type>.yaml)
feat=spec              # the classifiers' input feature
models="cnn cnn_lstm densenet densenet_lstm densenet_lstm_highway"
augs=none              # any of: none sp mixup sp+mixup (paper 1); syn real+syn real+syn+mixup (paper 2)
conditions=clean       # test conditions scored in stage 4: clean snr0 snr10 snr20 fgsm bim (fgsm_epsX bim_epsX: radius X)
snrs="0 10 20"         # SNRs of the noisy test copies (used when conditions name snrN)
eps=0.08               # L-inf radius of fgsm/bim, in normalised feature units (paper: 0.08); BIM: 10 steps of eps/8
nrepeats=1             # runs per fold with seeds 1..nrepeats
max_jobs=2             # training jobs at once
threads=1              # torch threads per training job
ngpu=0                 # GPUs per training job (0: CPU); N > 1: data-parallel (torchrun)
num_nodes=1            # nodes per training job (> 1: under Slurm, srun + torchrun)
conf_dir=conf          # conf/tuning: the paper-faithful settings (for a GPU)
sampling_steps=50      # S: strided sampling steps of the diffusion model (paper 2)
num_synthetic=1        # N: synthetic segments per (emotion, speaker, text) of a fold's training data
griffin_lim=2          # Griffin-Lim WAVs per emotion (real and synthetic) in the quality report
help_message=$(sed -n '2,8p' "$0")

. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh
. utils/stage.sh

if [ $# -ne 0 ]; then echo "run.sh: unexpected arguments: $*" >&2; exit 1; fi
log() { echo "$(date '+%F %T') $*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

corpus=${!corpus_var}
dset=all; [ "$four_class" = true ] && dset=all4
data=data/$dset
folds=data/${dset}_folds
exp=exp/$dset
train_feats=${data}_$feat

# Data dirs whose features stage 1 computes: the data, its speed-perturbed copies (every
# utterance: the training job keeps only copies of its own training utterances) and noisy copies.
feat_sources=$data
case " $augs " in *" sp "*|*" sp+mixup "*) feat_sources="$feat_sources ${data}_sp0.9 ${data}_sp1.1" ;; esac
noisy=
for c in $conditions; do case $c in snr*) noisy="$noisy ${c#snr}" ;; esac; done

# attack_args ATTACK EPS: ser.bin.score_attack's options; BIM takes 10 steps of EPS/8 (Kurakin et
# al.'s 1.25 EPS of travel, clipped to the EPS-ball; EPS 0.08 gives the paper's usual alpha 0.01).
attack_args() {
  awk -v e="$2" 'BEGIN { exit !(e ~ /^[0-9]*\.?[0-9]+$/) }' || die "attack radius '$2' is not a number (condition $1_eps$2?)"
  local bim=; [ $1 = bim ] && bim="--alpha $(awk -v e="$2" 'BEGIN { printf "%g", e / 8 }') --steps 10"
  echo "ser.bin.score_attack --attack $1 --eps $2 $bim --feats-dir $train_feats"
}

# score_args COND: the scoring program and its options for a test condition.
score_args() {
  case $1 in
    clean) echo "ser.bin.score --feats-dir $train_feats" ;;
    snr*) echo "ser.bin.score --feats-dir ${data}_$1_$feat" ;;
    fgsm|bim) attack_args $1 $eps ;;
    fgsm_eps*|bim_eps*) attack_args ${1%%_eps*} ${1#*_eps} ;;
    *) die "unknown test condition '$1' (clean snrN fgsm bim fgsm_epsX bim_epsX)" ;;
  esac
}
for c in $conditions; do score_args $c >/dev/null; done  # a typo fails now, not in stage 4
for a in $augs; do train_aug_options.sh $a - - - >/dev/null; done  # (inside $(...) it would not stop the run)

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -z "$corpus" ]; then
    [ -x local/download.sh ] || die "$corpus_var is not set: set it in db.sh or the environment"
    corpus=downloads/$(echo "$corpus_var" | tr 'A-Z' 'a-z')
    local/download.sh "$corpus"
  fi
  # Everything in local/ that data preparation reads (notes and docs do not count).
  sig=$(signature "$corpus_var=$(cd "$corpus" 2>/dev/null && pwd || echo "$corpus")" four_class=$four_class \
        $(ls local/* | grep -v -e '/corpus_note.txt$' -e '/results_note.txt$' -e '/README.md$'))
  if stage_complete $data "$sig"; then
    log "Stage 0: skipped: $data is complete"
  else
    log "Stage 0: data preparation: $corpus -> $data"
    local/data.sh --four-class $four_class "$corpus" $data
    mark_complete $data "$sig"
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for factor in 0.9 1.1; do
    case " $feat_sources " in *" ${data}_sp$factor "*) ;; *) continue ;; esac
    sig=$(signature $data/.complete factor=$factor)
    if stage_complete ${data}_sp$factor "$sig"; then
      log "Stage 1: skipped: ${data}_sp$factor is complete"
    else
      log "Stage 1: speed perturbation x$factor: $data -> ${data}_sp$factor"
      perturb_data_dir_speed.sh $factor $data ${data}_sp$factor
      mark_complete ${data}_sp$factor "$sig"
    fi
  done
  if [ -n "$noisy" ]; then
    [ -n "$NOISE" ] || die "conditions '$conditions' need noise: set NOISE in db.sh or the environment"
    sig=$(signature $data/.complete "NOISE=$NOISE" "snrs=$noisy" seed=1)
    if stage_complete ${data}_snr$(echo $noisy | cut -d' ' -f1) "$sig"; then
      log "Stage 1: skipped: noisy copies of $data are complete"
    else
      log "Stage 1: noisy copies of $data at SNR $noisy dB"
      python3 -m ser.bin.make_noisy_data --noise-dir "$NOISE" --snrs "$noisy" --seed 1 --overwrite $data $data
      for s in $noisy; do mark_complete ${data}_snr$s "$sig"; done
    fi
    for s in $noisy; do feat_sources="$feat_sources ${data}_snr$s"; done
  fi
  for src in $feat_sources; do
    for f in $feats; do
      conf=conf/feats/$f.yaml
      [ -f $conf ] || die "no feature config $conf"
      sig=$(signature $conf $src/wav.scp $src/.complete)
      if stage_complete ${src}_$f "$sig"; then
        log "Stage 1: skipped: ${src}_$f is complete"
        continue
      fi
      log "Stage 1: feature extraction ($f, nj=$nj): $src -> ${src}_$f"
      make_feats.sh --nj $nj --cmd "$train_cmd" --config $conf $src ${src}_$f feats/$(basename $src)_$f
      validate_data_dir.py ${src}_$f
      mark_complete ${src}_$f "$sig"
    done
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  # A corpus whose folds are not speaker pairs (e.g. CREMA-D's 91 actors) brings local/make_folds.sh.
  sig=$(signature $data/utt2spk $data/utt2emo conf/folds.yaml local/make_folds.sh)
  if stage_complete $folds "$sig"; then
    log "Stage 2: skipped: $folds is complete"
  elif [ -x local/make_folds.sh ]; then
    log "Stage 2: folds (local/make_folds.sh): $data -> $folds"
    local/make_folds.sh $data $folds
    mark_complete $folds "$sig"
  else
    log "Stage 2: leave-one-speaker-out folds: $data -> $folds"
    python3 -m ser.bin.make_folds --scheme loso --valid pair --pairs-file conf/folds.yaml $data $folds
    mark_complete $folds "$sig"
  fi
fi

nfolds() { ls -d $folds/[0-9]* 2>/dev/null | wc -l; }
# Resources each training job asks the job back-end for (local: ignored).
gpu_opts="--gpu $ngpu"; [ "$num_nodes" -gt 1 ] && gpu_opts="$gpu_opts --num-nodes $num_nodes"

# experiment_dir MODEL AUG: exp/<dset>/<feat>_<model>_<aug>_<config hash>: a changed config or
# data gets a new directory instead of reusing another's outputs.
experiment_dir() {
  local model=$1 aug=$2 conf=$conf_dir/train_$1.yaml hash
  [ -f $conf ] || die "no training config $conf for model '$model'"
  hash=$(python3 -m ser.bin.train --config $conf --feats-dir $train_feats --fold-dir $folds/1 \
           --classes $folds/classes.txt $(train_aug_args $aug 1) --print-config-hash)
  echo $exp/${feat}_${model}_${aug//+/_}_$hash
}

# diffusion_dir: exp/<dset>/diffusion_<config hash>, the per-fold diffusion models (paper 2).
syn=syn_s${sampling_steps}_n$num_synthetic
diffusion_dir() {
  echo $exp/diffusion_$(python3 -m ser.bin.train_diffusion --config $conf_dir/diffusion.yaml \
    --feats-dir ${data}_mel --fold-dir $folds/1 --text-dir $data --print-config-hash)
}

# train_aug_args AUG [FOLD]: train.py options of an augmentation setting (FOLD: JOB by default).
train_aug_args() {
  local syn_dir=; case $1 in *syn*) syn_dir=$(diffusion_dir)/fold.${2:-JOB}/$syn ;; esac
  train_aug_options.sh $1 $data $feat "$syn_dir"
}

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  n=$(nfolds); [ $n -gt 0 ] || die "no folds in $folds: run stage 2"
  case " $augs " in *syn*)
    # Paper 2: per fold, a diffusion model trained on that fold's training speakers only, and its
    # synthetic segments (conditioned on the training speakers) with a quality report.
    ddir=$(diffusion_dir)
    # Paired folds (test A, validate B / test B, validate A) train on the same speakers, so their
    # diffusion models and samples would be identical: one model per distinct train.list, listed
    # in $ddir/train_folds (job i trains fold $(sed -n ip train_folds)); the other folds' dirs
    # are links to it (fold.2 -> fold.1). A fold dir of an older run in their place is replaced.
    mkdir -p $ddir
    declare -A first_fold=()
    : > $ddir/train_folds.tmp
    for k in $(seq $n); do
      key=$(LC_ALL=C sort $folds/$k/train.list | md5sum | cut -d' ' -f1)
      if [ -z "${first_fold[$key]:-}" ]; then
        first_fold[$key]=$k
        echo $k >> $ddir/train_folds.tmp
        [ ! -L $ddir/fold.$k ] || rm $ddir/fold.$k
      elif [ "$(readlink $ddir/fold.$k 2>/dev/null)" != fold.${first_fold[$key]} ]; then
        rm -rf $ddir/fold.$k
        ln -s fold.${first_fold[$key]} $ddir/fold.$k
      fi
    done
    mv $ddir/train_folds.tmp $ddir/train_folds
    m=$(wc -l < $ddir/train_folds)
    fold='$(sed -n JOBp '$ddir'/train_folds)'   # expanded by each job's bash (JOB: 1..m)
    log "Stage 3: training the diffusion model: $m distinct training sets of $n folds -> $ddir"
    $cuda_cmd $gpu_opts --max-jobs-run $max_jobs --num-threads $threads JOB=1:$m $ddir/log/train.JOB.log \
      launch_train.sh --module ser.bin.train_diffusion --ngpu $ngpu --num_nodes $num_nodes -- \
        --config $conf_dir/diffusion.yaml --feats-dir ${data}_mel \
        --fold-dir "$folds/$fold" --text-dir $data --seed 1 --num-threads $threads --outdir "$ddir/fold.$fold"
    log "Stage 3: sampling $num_synthetic synthetic segment(s) per combination with S=$sampling_steps: $ddir/fold.*/$syn"
    $cuda_cmd --max-jobs-run $max_jobs --num-threads $threads JOB=1:$m $ddir/log/generate_$syn.JOB.log \
      python3 -m ser.bin.generate --model-dir "$ddir/fold.$fold" --num-per-combination $num_synthetic \
        --sampling-steps $sampling_steps --seed 1 --out-data "$ddir/fold.$fold/$syn" --out-feats "$ddir/fold.$fold/$syn/ark" \
        --ngpu $ngpu --num-threads $threads
    $train_cmd --max-jobs-run $max_jobs JOB=1:$m $ddir/log/report_$syn.JOB.log \
      python3 -m ser.bin.diffusion_report --real-feats ${data}_mel --utt-list "$folds/$fold/train.list" \
        --synthetic "$ddir/fold.$fold/$syn" --out "$ddir/fold.$fold/$syn/report" --griffin-lim $griffin_lim
    ;;
  esac
  for aug in $augs; do
    [ "${aug#sp}" = "$aug" ] || python3 -m ser.bin.check_folds $folds --data $data \
      --aug-dirs "${data}_sp0.9 ${data}_sp1.1"
    for model in $models; do
      dir=$(experiment_dir $model $aug)
      for seed in $(seq $nrepeats); do
        log "Stage 3: training $model ($feat, aug $aug, seed $seed): $n folds -> $dir"
        $cuda_cmd $gpu_opts --max-jobs-run $max_jobs --num-threads $threads JOB=1:$n $dir/log/train.seed$seed.JOB.log \
          launch_train.sh --ngpu $ngpu --num_nodes $num_nodes -- \
            --config $conf_dir/train_$model.yaml --feats-dir $train_feats \
            --fold-dir $folds/JOB --classes $folds/classes.txt $(train_aug_args $aug) \
            --seed $seed --num-threads $threads --outdir $dir/fold.JOB/seed$seed
      done
    done
  done
fi


if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  n=$(nfolds)
  for aug in $augs; do
    for model in $models; do
      dir=$(experiment_dir $model $aug)
      for seed in $(seq $nrepeats); do
        for cond in $conditions; do
          log "Stage 4: scoring $model ($aug, seed $seed) on $cond: $dir"
          $cuda_cmd --max-jobs-run $max_jobs --num-threads $threads JOB=1:$n $dir/log/score_$cond.seed$seed.JOB.log \
            python3 -m $(score_args $cond) --model-dir $dir/fold.JOB/seed$seed \
              --utt-list $folds/JOB/test.list --data-dir $data --ngpu $ngpu \
              --out $dir/fold.JOB/seed$seed/test_$cond
        done
      done
    done
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  # One report over every data set of this recipe (e.g. exp/all: 7 classes, exp/all4: 4 classes).
  args=()
  for d in exp/*/; do
    d=${d%/}; s=$(basename $d)
    [ -f data/$s/utt2emo ] || continue
    args+=(--exp-dir $d --corpus-note "$(cat local/corpus_note.txt), $(cut -d' ' -f2 data/$s/utt2emo | sort -u | wc -l) classes")
  done
  [ ${#args[@]} -gt 0 ] || die "nothing to report in exp/: run stages 3-4"
  log "Stage 5: report: exp -> RESULTS.md"
  # local/results_note.txt (optional): what a reader must know to compare, e.g. published numbers.
  note="Settings: conf/train_<model>.yaml as committed (CPU-sized unless run with --conf_dir conf/tuning, the papers' settings)."
  [ -f local/results_note.txt ] && note="$note $(cat local/results_note.txt)"
  python3 -m ser.bin.report "${args[@]}" --out RESULTS.md --fig-dir figures --protocol-note "$note"
fi
