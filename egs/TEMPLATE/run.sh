#!/usr/bin/env bash
# Speech emotion recognition recipe (the same run.sh in every egs/<corpus>; only local/, conf/ and
# db.sh differ). Stages:
#   0 data preparation (local/data.sh)   1 features (+ speed-perturbed and noisy copies)
#   2 speaker-independent folds          3 training (per fold x repeat jobs; with synthetic
#   4 scoring (clean, noisy, attacked)     augmentation first the diffusion model and its samples)
#   5 RESULTS.md                         6 pack: one deployable model per experiment (ser.bin.pack)
# Usage: ./run.sh [--stage N] [--stop_stage N] [--models "cnn densenet_lstm_highway"] [--augs "none mixup"] ...
set -euo pipefail

stage=0                # first stage to run
stop_stage=100         # last stage to run
nj=2                   # parallel jobs for feature extraction
four_class=false       # true: the papers' 4 classes (anger, happiness, neutral, sadness)
feats="spec mel"       # feature types of the data (conf/feats/<type>.yaml); its speed-perturbed/noisy copies get $feat only
feat=spec              # the classifiers' input feature: spec, mel, compare or egemaps (functionals, for mlp)
models="cnn cnn_lstm densenet densenet_lstm densenet_lstm_highway"  # classifiers (conf_dir/train_<model>.yaml); paper 2: cnn_blstm; functionals: mlp
augs=none              # any of: none sp mixup sp+mixup (paper 1); syn real+syn real+syn+mixup (paper 2)
conditions=clean       # test conditions scored in stage 4: clean snr0 snr10 snr20 fgsm bim (fgsm_epsX bim_epsX: radius X)
eps=0.08               # L-inf radius of fgsm/bim, in normalised feature units (paper: 0.08); BIM: 10 steps of eps/8
folds_conf=conf/folds.yaml  # stage 2's fold scheme; another file (e.g. conf/folds_valid2.yaml) has its own folds and experiments: data/<set>_folds_valid2, exp/<set>_folds_valid2
nrepeats=1             # runs per fold with seeds first_seed..first_seed+nrepeats-1
first_seed=1           # e.g. --first_seed 3 --nrepeats 2: seeds 3-4, added later or on another machine without re-running 1-2
seed_ensemble=true     # with nrepeats >= 2, stage 4 also scores each model's mean posterior over this run's seeds (a report row)
refit=false            # true: stage 3 also trains each run again on its fold's training + validation speakers, for the epochs and learning rates its validation chose (ser.training.refit; tag <tag>_refit, scored and reported as its own row)
max_jobs=2             # training jobs at once
threads=1              # torch threads per training job
ngpu=0                 # GPUs per training job (0: CPU); N > 1: data-parallel (torchrun)
num_nodes=1            # nodes per training job (> 1: under Slurm, srun + torchrun)
conf_dir=conf          # conf/tuning: the paper-faithful settings (for a GPU); a config the recipe lacks comes from egs/TEMPLATE/<conf_dir>
sampling_steps=50      # S: strided sampling steps of the diffusion model (paper 2)
sampler=ancestral      # strided sampler: ancestral (the paper's, learned variance) or ddim (deterministic); ddim samples: syn_s<S>_n<N>_ddim
num_synthetic=1        # N: synthetic segments per (emotion, speaker, text) of a fold's training data
griffin_lim=2          # Griffin-Lim WAVs per emotion (real and synthetic) in the quality report
allow_partial=false    # true: stage 4 scores the folds whose training finished, stage 5 reports such rows marked as partial
help_message=$(sed -n '2,8p' "$0")
help_options=true      # --help lists the options above, with their defaults and comments

. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh
. utils/stage.sh
. utils/recipe_lock.sh
. utils/recipe_helpers.sh

if [ $# -ne 0 ]; then echo "run.sh: unexpected arguments: $*" >&2; exit 1; fi
# Numeric options, checked before any stage (a bad one would make every stage guard fail quietly).
for o in stage stop_stage ngpu griffin_lim; do check_int $o 0; done
for o in nj nrepeats first_seed max_jobs threads num_nodes sampling_steps num_synthetic; do check_int $o 1; done
case $sampler in ancestral|ddim) ;; *) die "--sampler must be ancestral or ddim, got '$sampler'" ;; esac
check_number eps

corpus=${!corpus_var}
dset=all; [ "$four_class" = true ] && dset=all4
data=data/$dset
folds=data/${dset}_folds
exp=exp/$dset
if [ "$folds_conf" != conf/folds.yaml ]; then
  [ -f "$folds_conf" ] || die "--folds_conf $folds_conf: no such file"
  [ ! -x local/make_folds.sh ] || die "--folds_conf: this recipe makes its folds with local/make_folds.sh"
  scheme=$(basename "$folds_conf" .yaml)
  [[ $scheme =~ ^folds_[A-Za-z0-9]+$ ]] || die "--folds_conf $folds_conf: name it conf/folds_<name>.yaml (letters and digits)"
  folds=data/${dset}_$scheme
  exp=exp/${dset}_$scheme
fi
train_feats=${data}_$feat
last_seed=$(( first_seed + nrepeats - 1 ))
seeds=$(seq -s ' ' $first_seed $last_seed)
# The seed ensemble's tag suffix: seeds 1-N keep the plain one, another range names itself so
# that adding seeds 3-4 later leaves the ensemble of seeds 1-2 as it was.
ens_suffix=_seed_ensemble; [ $first_seed -eq 1 ] || ens_suffix=_seed_ensemble_$first_seed-$last_seed

read_augs $data $feat $augs
[ "$refit" = false ] || [ $with_syn = false ] || die "--refit true: --augs '$augs' trains on synthetic data, which is made for train.list only"
# The configs of this run: the recipe's own (<conf_dir>/NAME), else egs/TEMPLATE's (conf_file).
declare -A train_conf=()
for m in $models; do train_conf[$m]=$(conf_file $conf_dir train_$m.yaml); done
diffusion_conf=; [ $with_syn = false ] || diffusion_conf=$(conf_file $conf_dir diffusion.yaml)
# Data dirs whose features stage 1 computes: the data, its speed-perturbed copies (every
# utterance: the training job keeps only copies of its own training utterances) and noisy copies.
sp_dirs=$(for a in $augs; do echo ${aug_sp[$a]}; done | tr ' ' '\n' | awk 'NF && !seen[$0]++')
feat_sources=$(echo $data $sp_dirs)
# The scoring program and options of each test condition, one line each (ser.eval.conditions
# owns the names: clean, snrN, fgsm, bim, fgsm_epsX, bim_epsX); a typo stops the run now.
score_cmds=$(python3 -m ser.bin.score_command $conditions --data $data --feat $feat --eps $eps --train-feats $train_feats)
# score_args COND: the line of test condition COND (one of $conditions).
score_args() {
  local c i=0
  for c in $conditions; do i=$((i + 1)); [ $c != $1 ] || { sed -n ${i}p <<< "$score_cmds"; return; }; done
  die "test condition '$1' is not in --conditions"
}
noisy=    # SNRs of the noisy test copies: those the snrN conditions name
for s in $(python3 -m ser.bin.score_command --list-snrs $conditions); do noisy="$noisy $s"; done

lock_recipe_dir  # one run per recipe dir: a second one stops here, naming the first

# recipe_classes: the labels this recipe's data may have (conf/classes.txt, or the papers' 4).
recipe_classes() {
  if [ "$four_class" = true ]; then echo "anger happiness neutral sadness"; return; fi
  [ -f conf/classes.txt ] || die "conf/classes.txt: no such file (the recipe's classes, one per line)"
  echo $(cat conf/classes.txt)
}
# check_data DIR: a valid data dir (sorted tables, ...) whose labels are all recipe classes.
check_data() { local c; c=$(recipe_classes); validate_data_dir.py --no-feats --classes "$c" $1 >/dev/null; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -z "$corpus" ]; then
    [ -x local/download.sh ] || die "$corpus_var is not set: set it in db.sh or the environment"
    corpus=downloads/$(echo "$corpus_var" | tr 'A-Z' 'a-z')
    local/download.sh "$corpus"
  fi
  # Everything in local/ that data preparation reads: not the notes and docs (*.md, *_note.txt:
  # editing a results note must not redo the data and, through it, every feature), nor the fold
  # makers (stage 2's).
  sig=$(signature "$corpus_var=$(cd "$corpus" 2>/dev/null && pwd || echo "$corpus")" four_class=$four_class \
        $(ls local/* | grep -v -e '\.md$' -e '_note\.txt$' -e '/[^/]*folds[^/]*$'))
  if stage_complete $data "$sig"; then
    log "Stage 0: skipped: $data is complete"
  else
    log "Stage 0: data preparation with local/data.sh: $corpus -> $data"
    local/data.sh --four-class $four_class "$corpus" $data
    check_data $data
    mark_complete $data "$sig"
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for sp in $sp_dirs; do
    factor=${sp##*_sp}
    sig=$(signature $data/.complete factor=$factor)
    if stage_complete $sp "$sig"; then
      log "Stage 1: skipped: $sp is complete"
    else
      log "Stage 1: speed perturbation x$factor with perturb_data_dir_speed.sh: $data -> $sp"
      perturb_data_dir_speed.sh $factor $data $sp
      mark_complete $sp "$sig"
    fi
  done
  if [ -n "$noisy" ]; then
    [ -n "$NOISE" ] || die "conditions '$conditions' need noise: set NOISE in db.sh or the environment"
    sig=$(signature $data/.complete "NOISE=$NOISE" "snrs=$noisy" seed=1)
    if stage_complete ${data}_snr$(echo $noisy | cut -d' ' -f1) "$sig"; then
      log "Stage 1: skipped: noisy copies of $data are complete"
    else
      log "Stage 1: noisy copies of $data at SNR $noisy dB with ser.bin.make_noisy_data"
      python3 -m ser.bin.make_noisy_data --noise-dir "$NOISE" --snrs "$noisy" --seed 1 --overwrite $data $data
      for s in $noisy; do mark_complete ${data}_snr$s "$sig"; done
    fi
    for s in $noisy; do feat_sources="$feat_sources ${data}_snr$s"; done
  fi
  # The feature types each later stage reads: the classifiers (stages 3-4) $feat of $data, of its
  # speed-perturbed copies (aug_sp) and of its noisy copies (score_args); the
  # diffusion model and its report (stage 3, synthetic settings) mel of $data. $data also gets
  # every type of --feats (e.g. data/all_mel for the cross-corpus recipe); the copies get $feat only.
  data_types=$(echo $feats $feat $([ $with_syn = false ] || echo mel) | tr ' ' '\n' | awk '!seen[$0]++')
  declare -A feat_sig=() feat_type=()
  todo=()      # output dirs to compute
  for src in $feat_sources; do
    types=$feat; [ $src = $data ] && types=$data_types
    for f in $types; do
      conf=$(conf_file conf/feats $f.yaml)
      # (named conf/feats/<type>.yaml in the signature wherever the file is)
      sig=$(signature "conf/feats/$f.yaml=$(sha1sum < $conf | cut -c1-12)" $src/wav.scp $src/.complete)
      if stage_complete ${src}_$f "$sig"; then
        log "Stage 1: skipped: ${src}_$f is complete"
      else
        feat_sig[${src}_$f]=$sig feat_type[${src}_$f]=$f
        todo+=(${src}_$f)
      fi
    done
  done
  if [ ${#todo[@]} -gt 0 ]; then
    # One make_feats.sh call: nj jobs, each reading every recording of its part of every source
    # once and writing all of that recording's outputs (groups: SRC OUT_type1 .. OUT_typeK, '-': none).
    todo_types=$(for o in "${todo[@]}"; do echo ${feat_type[$o]}; done | awk '!seen[$0]++')
    conf_opts=() groups=() what=
    for f in $todo_types; do conf_opts+=(--config $(conf_file conf/feats $f.yaml)); done
    for src in $feat_sources; do
      group=($src) outs=
      for f in $todo_types; do
        if [ -n "${feat_sig[${src}_$f]:-}" ]; then group+=(${src}_$f); outs="$outs ${src}_$f"; else group+=(-); fi
      done
      [ -z "$outs" ] || { groups+=("${group[@]}"); what="$what${what:+; }$src ->$outs"; }
    done
    log "Stage 1: feature extraction ($(echo $todo_types), nj=$nj, make_feats.sh): $what"
    make_feats.sh --nj $nj --cmd "$train_cmd" "${conf_opts[@]}" "${groups[@]}" feats
    for out in "${todo[@]}"; do
      validate_data_dir.py --full $out
      mark_complete $out "${feat_sig[$out]}"
    done
  fi
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  # A corpus whose folds are not speaker pairs (e.g. CREMA-D's 91 actors) brings local/make_folds.sh;
  # it and the fold makers it calls (local/*folds*) are in the signature.
  sig=$(signature $data/utt2spk $data/utt2emo $folds_conf local/make_folds.sh \
        $(ls local/*folds* 2>/dev/null | grep -v -x local/make_folds.sh))
  check_data $data  # an edited or broken data dir is refused, not split into folds
  if stage_complete $folds "$sig"; then
    log "Stage 2: skipped: $folds is complete"
  elif [ -x local/make_folds.sh ]; then
    log "Stage 2: folds (local/make_folds.sh): $data -> $folds"
    local/make_folds.sh $data $folds
    mark_complete $folds "$sig"
  else
    log "Stage 2: speaker-independent folds (ser.bin.make_folds, $folds_conf): $data -> $folds"
    python3 -m ser.bin.make_folds --conf $folds_conf $data $folds
    mark_complete $folds "$sig"
  fi
fi

nfolds() { ls -d $folds/[0-9]* 2>/dev/null | wc -l || true; }  # (no folds: ls fails, pipefail)

# experiment_dir MODEL AUG: exp/<dset>/<feat>_<model>_<aug>_<config hash>: a changed config or
# data gets a new directory instead of reusing another's outputs.
experiment_dir() {
  local model=$1 aug=$2 hash
  hash=$(classifier_hash ${train_conf[$model]} $train_feats $folds/1 $folds/classes.txt $(train_aug_args $aug 1))
  echo $exp/${feat}_${model}_${aug_key[$aug]}_$hash
}

# tag_dirs MODEL AUG: the experiment dirs stages 4 and 6 treat: experiment_dir, and with --refit
# true its refit (<dir>_refit: every run trained again on training + validation speakers).
tag_dirs() {
  local dir; dir=$(experiment_dir $1 $2)
  echo $dir; [ "$refit" = false ] || echo ${dir}_refit
}

# unfinished_runs DIR NAME ACTION HOW: sets runs_todo to the unfinished runs SEED.FOLD of DIR over
# $seeds (comma-separated), logging each seed as skipped ("NAME (...) in DIR") or as to be trained
# ("ACTION (...) HOW: folds ... -> DIR").
unfinished_runs() {
  local dir=$1 name=$2 action=$3 how=$4 seed todo k
  runs_todo=
  for seed in $seeds; do
    todo=$(echo $(pending $n $dir/fold.FOLD/seed$seed/done))
    if [ -z "$todo" ]; then
      log "Stage 3: skipped ($n folds done): $name ($feat, aug $aug, seed $seed) in $dir"
      continue
    fi
    log "Stage 3: $action ($feat, aug $aug, seed $seed) $how: folds $todo of $n -> $dir"
    for k in $todo; do runs_todo=$runs_todo${runs_todo:+,}$seed.$k; done
  done
}

# train_runs DIR RUNS [REFIT_SOURCE]: train the runs SEED.FOLD (comma-separated) of a model into
# DIR/fold.FOLD/seedSEED as one job array, so that no slot idles while a seed's last folds finish;
# with REFIT_SOURCE each run is the refit of REFIT_SOURCE/fold.FOLD/seedSEED. Uses $model's config,
# $aug_args and $train_feats.
train_runs() {
  local dir=$1 runs=$2 source=${3:-} refit_args=
  # JOB is SEED.FOLD: each job's bash takes the seed and the fold apart
  local seed_of='$(echo JOB | cut -d. -f1)' fold_of='$(echo JOB | cut -d. -f2)'
  [ -z "$source" ] || refit_args="--refit-from $source/fold.$fold_of/seed$seed_of"
  $cuda_cmd $(gpu_opts $ngpu $num_nodes) --max-jobs-run $max_jobs --num-threads $threads JOB=$runs $dir/log/train.seedJOB.log \
    launch_train.sh --module ser.bin.train --ngpu $ngpu --num_nodes $num_nodes -- \
      --config ${train_conf[$model]} --feats-dir $train_feats \
      --fold-dir "$folds/$fold_of" --classes $folds/classes.txt ${aug_args//JOB/$fold_of} $refit_args \
      --seed "$seed_of" --num-threads $threads --outdir "$dir/fold.$fold_of/seed$seed_of"
}

# ddir: exp/<dset>/diffusion_<config hash>, the per-fold diffusion models (paper 2). Its hash needs
# the folds, so resolve_ddir sets it (once, in this shell) at the start of stages 3, 4 and 6.
syn=syn_s${sampling_steps}_n$num_synthetic; [ $sampler = ancestral ] || syn=${syn}_$sampler
ddir=
resolve_ddir() {
  [ $with_syn = true ] && [ -z "$ddir" ] || return 0
  ddir=$exp/diffusion_$(diffusion_hash $diffusion_conf ${data}_mel $folds/1 $data)
}

# train_aug_args AUG [FOLD]: train.py options of an augmentation setting (FOLD: JOB by default).
train_aug_args() {
  local syn_dir=; [ ${aug_syn[$1]} = false ] || syn_dir=$ddir/fold.${2:-JOB}/$syn
  aug_train_options $1 $syn_dir
}

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  n=$(nfolds); [ $n -gt 0 ] || die "no folds in $folds: run stage 2"
  resolve_ddir
  if [ $with_syn = true ]; then
    # Paper 2: per fold, a diffusion model trained on that fold's training speakers only, and its
    # synthetic segments (conditioned on the training speakers) with a quality report.
    # Paired folds (test A, validate B / test B, validate A) train on the same speakers, so their
    # diffusion models and samples would be identical: one model per distinct train.list, listed
    # in $ddir/train_folds (job i trains fold $(sed -n ip train_folds)); the other folds' dirs
    # are links to it (fold.2 -> fold.1). A fold dir of an older run in their place is replaced.
    check_trained_on_folds $ddir $folds
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
    train_diffusion_models 3 $ddir $m "$m distinct training sets of $n folds" "$folds/$fold" "$ddir/fold.$fold" \
      $diffusion_conf ${data}_mel $data
  fi
  for aug in $augs; do
    [ -z "${aug_sp[$aug]}" ] || python3 -m ser.bin.check_folds $folds --data $data --aug-dirs "${aug_sp[$aug]}"
    for model in $models; do
      dir=$(experiment_dir $model $aug)
      check_trained_on_folds $dir $folds
      aug_args=$(train_aug_args $aug)
      # The unfinished (seed, fold) runs of all seeds form one job array (train_runs). Finished
      # runs (`done`) are not started again: their logs stay as they were.
      unfinished_runs $dir "$model" "training $model" "with ser.bin.train"
      [ -z "$runs_todo" ] || train_runs $dir $runs_todo
      [ "$refit" = true ] || continue
      check_trained_on_folds ${dir}_refit $folds
      unfinished_runs ${dir}_refit "refit of $model" "refitting $model" \
        "on training + validation speakers with ser.bin.train --refit-from $dir"
      [ -z "$runs_todo" ] || train_runs ${dir}_refit $runs_todo $dir
    done
  done
fi


if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  n=$(nfolds); [ $n -gt 0 ] || die "no folds in $folds: run stage 2"
  resolve_ddir
  for aug in $augs; do
    for model in $models; do
      for dir in $(tag_dirs $model $aug); do
        [ ! -d $dir ] || check_trained_on_folds $dir $folds
        for seed in $seeds; do
          # An unfinished training (no `done`) is not scored: the fold would count with a partial model.
          unfinished=$(echo $(pending $n $dir/fold.FOLD/seed$seed/done))   # one line: "8 9 10"
          if [ -n "$unfinished" ]; then
            k=${unfinished%% *}
            [ "$allow_partial" = true ] || \
              die "Stage 4: $dir/fold.$k/seed$seed: training not finished (no done): run stage 3 (or --allow_partial true)"
            log "Stage 4: not scoring folds $(echo $unfinished) of $model ($aug, seed $seed): training not finished (--allow_partial true)"
          fi
          for cond in $conditions; do
            prog=$(score_args $cond)
            feats_dir=$(echo "$prog" | sed 's/.*--feats-dir \([^ ]*\).*/\1/')
            # Scored folds (done newer than the model, features and list, as the scorer checks) are skipped.
            todo=
            for k in $(seq $n); do
              [[ " $unfinished " != *" $k "* ]] || continue
              newer_than_all $dir/fold.$k/seed$seed/test_$cond/done $dir/fold.$k/seed$seed/model.pt \
                $feats_dir/feats.scp $folds/$k/test.list || todo="$todo $k"
            done
            if [ -z "$todo" ]; then
              log "Stage 4: skipped ($(( n - $(wc -w <<< "$unfinished") )) folds done): $model ($aug, seed $seed) on $cond: $dir"
              continue
            fi
            log "Stage 4: scoring $model ($aug, seed $seed) on $cond with ${prog%% *}: folds$todo of $n: $dir"
            for range in $(job_ranges $todo); do
              $cuda_cmd --max-jobs-run $max_jobs --num-threads $threads JOB=$range $dir/log/score_$cond.seed$seed.JOB.log \
                python3 -m $prog --model-dir $dir/fold.JOB/seed$seed \
                  --utt-list $folds/JOB/test.list --data-dir $data --ngpu $ngpu \
                  --out $dir/fold.JOB/seed$seed/test_$cond
            done
          done
        done
        if [ "$seed_ensemble" = true ] && [ $nrepeats -ge 2 ]; then
          unfinished=$(for seed in $seeds; do pending $n $dir/fold.FOLD/seed$seed/done; done)
          if [ -n "$unfinished" ]; then
            log "Stage 4: no seed ensemble of $model ($aug): not every seed has finished every fold"
          else
            log "Stage 4: seed ensemble of $model ($aug, seeds $first_seed-$last_seed) with ser.bin.ensemble_seeds: $dir -> ${dir}$ens_suffix"
            python3 -m ser.bin.ensemble_seeds --exp-dir $(dirname $dir) --out-tag $(basename $dir)$ens_suffix \
              --seeds "$seeds" $(basename $dir) > $dir/log/ensemble_seeds.log 2>&1 \
              || die "Stage 4: ser.bin.ensemble_seeds failed: $(tail -1 $dir/log/ensemble_seeds.log)"
          fi
        fi
      done
    done
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  # One report over every data set of this recipe (e.g. exp/all: 7 classes, exp/all4: 4 classes).
  args=()
  for d in exp/*/; do
    d=${d%/}; s=$(basename $d); s=${s%%_folds_*}   # exp/<set>_folds_<name>: --folds_conf conf/folds_<name>.yaml
    [ -f data/$s/utt2emo ] || continue
    args+=(--exp-dir $d --corpus-note "$(cat local/corpus_note.txt), $(cut -d' ' -f2 data/$s/utt2emo | sort -u | wc -l) classes")
  done
  [ ${#args[@]} -gt 0 ] || die "nothing to report in exp/: run stages 3-4"
  # per-fold choices between settings (ser.bin.select_on_valid): redone, as their candidates may have changed
  for sel in exp/*/*/selection.tsv; do
    [ -f "$sel" ] || continue
    log "Stage 5: refreshing the per-fold selection $(dirname $sel) with ser.bin.select_on_valid"
    python3 -m ser.bin.select_on_valid --refresh $(dirname $sel)
  done
  log "Stage 5: report with ser.bin.report: exp -> RESULTS.md"
  # local/results_note.txt (optional): what a reader must know to compare, e.g. published numbers.
  note="Settings: conf/train_<model>.yaml as committed (CPU-sized unless run with --conf_dir conf/tuning, the papers' settings)."
  [ -f local/results_note.txt ] && note="$note $(cat local/results_note.txt)"
  partial=; [ "$allow_partial" = true ] && partial=--allow-partial
  # local/results_note.md (optional): the recipe's reading of its results, shown as '## Notes'.
  notes=(); [ -f local/results_note.md ] && notes=(--notes local/results_note.md)
  python3 -m ser.bin.report "${args[@]}" --out RESULTS.md --fig-dir figures --protocol-note "$note" $partial "${notes[@]}"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  # One deployable model per experiment: the ensemble of its fold models (no retraining), with the
  # clean LOSO scores of stage 4 in its model card; ser-infer --model-dir <dir>/packed uses it.
  case " $conditions " in
    *" clean "*)
      resolve_ddir
      for aug in $augs; do
        for model in $models; do
          for dir in $(tag_dirs $model $aug); do
            log "Stage 6: packing $model ($aug) with ser.bin.pack: $dir -> $dir/packed"
            python3 -m ser.bin.pack --exp-dir $dir --out $dir/packed --condition test_clean \
              --corpus-note "$(cat local/corpus_note.txt)"
          done
        done
      done ;;
    *) log "Stage 6: skipped: packing needs the clean test scores (--conditions clean)" ;;
  esac
fi
