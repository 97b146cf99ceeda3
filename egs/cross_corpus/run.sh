#!/usr/bin/env bash
# Cross-corpus SER. --setup split (paper 1 sec. 5.4, paper 2 Table 3): train on SRC, select models
# on a random 30 % of TGT, test on the other 70 %. --setup adapt (paper 2 Figure 4): test on 50 %
# of TGT, add 0-50 % of TGT to the training data, select on held-out SRC speakers. Both over the
# common 4 classes; needs the features of both corpora (../SRC, ../TGT: stage 1 there). Stages:
# numbered as in the corpus recipes (their stage 0, data preparation, has no counterpart here):
#   1 import both feature dirs with corpus-prefixed ids (+ speed-perturbed source copies)
#   2 the target split(s)   3 training (with syn augs first the diffusion model and its samples)
#   4 scoring on the test part   5 RESULTS.md / RESULTS_adapt.md (every pair in exp/)
# Usage: ./run.sh [--src emodb] [--tgt ravdess] [--setup split|adapt] [--models "cnn"] [--augs "none syn"] ...
set -euo pipefail

stage=0                # first stage to run
stop_stage=100         # last stage to run
setup=split            # split: 30/70 (paper 1; paper 2 Table 3)   adapt: paper 2 Figure 4
src=emodb              # training corpus: a recipe ../<src> whose stage 1 has run
tgt=ravdess            # test corpus
src_data=              # default ../<src>/data/all_<feat> (e.g. ../<src>/data/all4_<feat>)
tgt_data=              # default ../<tgt>/data/all_<feat>
feat=                  # the classifiers' input feature (default spec; mel with syn augs)
classes="anger happiness neutral sadness"  # common labels; other utterances are dropped
dev_fraction=0.3       # split: part of each target class used for model selection (paper: 30 %)
split_seed=1           # seed of the random target split
test_fraction=0.5      # adapt: part of the target that is the test set (paper 2: 50 %)
adapt_fractions="0 0.1 0.2 0.3 0.4 0.5"  # adapt: parts of the target corpus added to training
adapt_unit=speaker     # adapt: test part drawn by speaker (no test speaker in training) or utterance
src_valid_speakers=1   # adapt: source speakers held out for model selection
models=                # default: cnn cnn_lstm densenet densenet_lstm densenet_lstm_highway; cnn_blstm with syn augs
augs=none              # any of: none sp mixup sp+mixup (paper 1); syn real+syn real+syn+mixup (paper 2)
nrepeats=3             # training runs with seeds 1..nrepeats (mean ± std over them)
max_jobs=2             # training jobs at once
threads=1              # torch threads per training job
ngpu=0                 # GPUs per training job (0: CPU); N > 1: data-parallel (torchrun)
num_nodes=1            # nodes per training job (> 1: under Slurm, srun + torchrun)
conf_dir=              # configs <conf_dir>/train_<model>.yaml, diffusion.yaml (else egs/TEMPLATE's); default ../<src>/conf
sampling_steps=50      # S: strided sampling steps of the diffusion model (paper 2)
sampler=ancestral      # strided sampler: ancestral (the paper's, learned variance) or ddim (deterministic); ddim samples: syn_s<S>_n<N>_ddim
num_synthetic=1        # N: synthetic segments per (emotion, speaker, text) of the source training data
griffin_lim=2          # Griffin-Lim audio examples per emotion in the synthetic data's report (0: none)
help_message=$(sed -n '2,10p' "$0")
help_options=true      # --help lists the options above, with their defaults and comments

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. utils/stage.sh
. utils/recipe_lock.sh
. utils/recipe_helpers.sh

if [ $# -ne 0 ]; then echo "run.sh: unexpected arguments: $*" >&2; exit 1; fi
# Numeric options, checked before any stage (a bad one would make every stage guard fail quietly).
for o in stage stop_stage ngpu griffin_lim split_seed; do check_int $o 0; done
for o in nrepeats max_jobs threads num_nodes sampling_steps num_synthetic src_valid_speakers; do check_int $o 1; done
case $sampler in ancestral|ddim) ;; *) die "--sampler must be ancestral or ddim, got '$sampler'" ;; esac
for o in dev_fraction test_fraction; do check_number $o; done

[ "$src" != "$tgt" ] || die "--src and --tgt are both '$src': cross-corpus needs two corpora"
case $setup in split|adapt) ;; *) die "unknown --setup '$setup' (split or adapt)" ;; esac
with_syn=$(python3 -m ser.bin.aug_setting uses-synthetic $augs) || exit 1   # (an unknown name stops here)
if [ -z "$feat" ]; then feat=spec; [ $with_syn = true ] && feat=mel; fi
read_augs data/$src $feat $augs
if [ -z "$models" ]; then
  models="cnn cnn_lstm densenet densenet_lstm densenet_lstm_highway"
  [ $with_syn = true ] && models=cnn_blstm
fi
# The diffusion model generates scaled mel segments: the classifiers must read the same features.
[ $with_syn = false ] || [ $feat = mel ] || die "--augs '$augs' (synthetic data) needs --feat mel, not '$feat'"
src_data=${src_data:-../$src/data/all_$feat}
tgt_data=${tgt_data:-../$tgt/data/all_$feat}
conf_dir=${conf_dir:-../$src/conf}
# The configs of this run: the source recipe's own (<conf_dir>/NAME), else egs/TEMPLATE's (conf_file).
declare -A train_conf=()
for m in $models; do train_conf[$m]=$(conf_file $conf_dir train_$m.yaml); done
diffusion_conf=; [ $with_syn = false ] || diffusion_conf=$(conf_file $conf_dir diffusion.yaml)
pair=${src}_to_$tgt
src_dir=data/${src}_$feat        # imported dirs: ids prefixed by "<corpus>-"
tgt_dir=data/${tgt}_$feat
train_feats=data/${pair}_$feat   # both imported dirs in one (train.py reads one feats dir)
# The split's parameters are in its path, so a new split gets new experiment dirs (the config
# hash covers the path). split: one fold $folds/1 (train = source, valid + test = target).
# adapt: one fold per fraction F, $folds/adapt<F>/1; adapt0 is always made: the diffusion
# model's fold (its train.list is the source training part shared by every F).
sfx=
[ "$classes" = "anger happiness neutral sadness" ] || sfx=_$(echo $classes | tr ' ' '-')
if [ $setup = split ]; then
  split=dev${dev_fraction}_seed$split_seed$sfx
  exp=exp/$pair
  variants=1
else
  split=adapt_test${test_fraction}_${adapt_unit}_srcvalid${src_valid_speakers}_seed$split_seed$sfx
  exp=exp/${pair}_adapt/$split
  fracs=
  for f in $adapt_fractions; do
    printf -v g '%g' "$f" 2>/dev/null || die "--adapt_fractions: '$f' is not a number"
    fracs="$fracs $g"    # 0.10 -> 0.1: one name per fraction
  done
  variants=$fracs
  # `syn` with F > 0 is the paper's Figure 4: synthetic source data plus the fold's adapt.list
  # (real target utterances), which ser.training.dataset keeps under every training source.
fi
folds=data/${pair}_folds/$split
# fold_parent VARIANT: the folds dir (with classes.txt and fold 1/) of a split variant.
fold_parent() { if [ $setup = split ]; then echo $folds; else echo $folds/adapt$1; fi; }
dfold=$(fold_parent 0)/1         # the diffusion model's fold: source training utterances only

# The source recipe's speed-perturbed copies the settings train on (../emodb/data/all_sp0.9), whose
# features (+ _$feat) are imported as data/<src>_sp<factor>_$feat.
sp_sources=$(python3 -m ser.bin.aug_setting speed-dirs --data ${src_data%_$feat} $augs)

# import_dir IN OUT CORPUS: a copy of data dir IN whose utterance and speaker ids start with
# "CORPUS-" (EmoDB speaker 03 and RAVDESS actor 03 would otherwise be one speaker); the values
# of utt2uniq (the source utterance of a speed-perturbed copy) get the prefix too, so that they
# still name utterances of the imported data. Built as OUT.tmp, validated, then renamed.
import_dir() {
  local in=$1 out=$2 prefix=$3-
  rm -rf $out.tmp
  copy_data_dir.py --utt-prefix $prefix --spk-prefix $prefix $in $out.tmp
  if [ -f $out.tmp/utt2uniq ]; then
    awk -v p=$prefix '{ print $1, p $2 }' $out.tmp/utt2uniq > $out.tmp/utt2uniq.new
    mv $out.tmp/utt2uniq.new $out.tmp/utt2uniq
  fi
  validate_data_dir.py --no-wav $out.tmp >/dev/null
  rm -rf $out
  mv $out.tmp $out
}

# import_step IN OUT CORPUS FILE...: stage 1's import of IN as OUT (import_dir), skipped when OUT
# is complete with the signature of IN's FILEs.
import_step() {
  local in=$1 out=$2 corpus=$3 sig; shift 3
  sig=$(signature "in=$in" "$@" prefix=$corpus-)
  if stage_complete $out "$sig"; then
    log "Stage 1: skipped: $out is complete"
  else
    log "Stage 1: import $in -> $out with copy_data_dir.py (ids prefixed by $corpus-)"
    import_dir $in $out $corpus
    mark_complete $out "$sig"
  fi
}

# need_feats DIR CORPUS WHAT [RUN_OPTS]: DIR must be a finished feature dir of recipe ../CORPUS.
need_feats() {
  [ -f $1/feats.scp ] && [ -f $1/conf.yaml ] ||
    die "no features in $1 ($3): run egs/$2 first (cd ../$2 && ./run.sh --stop_stage 1 --feats $feat${4:-})"
}

lock_recipe_dir  # one run per recipe dir: a second one stops here, naming the first

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  need_feats $src_data $src "source"
  need_feats $tgt_data $tgt "target"
  sp_dirs=
  for sp in $sp_sources; do
    need_feats ${sp}_$feat $src "speed-perturbed source" " --augs sp"
    sp_dirs="$sp_dirs ${sp}_$feat"
  done
  # A model can only be tested on the features it was trained on.
  local/same_feature_config.py $src_data $tgt_data $sp_dirs
  import_step $src_data $src_dir $src $src_data/{feats.scp,utt2spk,utt2emo,conf.yaml}
  import_step $tgt_data $tgt_dir $tgt $tgt_data/{feats.scp,utt2spk,utt2emo,conf.yaml}
  for sp in $sp_sources; do
    in=${sp}_$feat
    import_step $in data/${src}_sp${sp##*_sp}_$feat $src $in/{feats.scp,utt2spk,utt2uniq,conf.yaml}
  done
  sig=$(signature $src_dir/.complete $tgt_dir/.complete)
  if stage_complete $train_feats "$sig"; then
    log "Stage 1: skipped: $train_feats is complete"
  else
    log "Stage 1: combine $src_dir $tgt_dir -> $train_feats with combine_data.py"
    rm -rf $train_feats.tmp
    combine_data.py $train_feats.tmp $src_dir $tgt_dir
    # combine_data.py keeps conf.yaml only when the two files are byte-identical; they are equal
    # as configs (checked above), and train.py stores it in the model.
    cp $src_dir/conf.yaml $train_feats.tmp/conf.yaml
    validate_data_dir.py --no-wav $train_feats.tmp >/dev/null
    rm -rf $train_feats
    mv $train_feats.tmp $train_feats
    mark_complete $train_feats "$sig"
  fi
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for d in $src_dir $tgt_dir; do [ -f $d/.complete ] || die "$d is incomplete: run stage 1"; done
  if [ $setup = split ]; then
    sig=$(signature $src_dir/utt2spk $src_dir/utt2emo $tgt_dir/utt2spk $tgt_dir/utt2emo \
          "classes=$classes" dev_fraction=$dev_fraction split_seed=$split_seed)
    if stage_complete $folds "$sig"; then
      log "Stage 2: skipped: $folds is complete"
    else
      log "Stage 2: cross-corpus split with ser.bin.make_cross_corpus_fold: train $src_dir, valid $dev_fraction / test rest of $tgt_dir -> $folds"
      python3 -m ser.bin.make_cross_corpus_fold --src-data $src_dir --tgt-data $tgt_dir \
        --dev-fraction $dev_fraction --seed $split_seed --classes "$classes" $folds
      mark_complete $folds "$sig"
    fi
  else
    for f in $(echo 0 $fracs | tr ' ' '\n' | sort -gu); do
      out=$(fold_parent $f)
      sig=$(signature $src_dir/utt2spk $src_dir/utt2emo $tgt_dir/utt2spk $tgt_dir/utt2emo "classes=$classes" \
            split_seed=$split_seed test_fraction=$test_fraction adapt_unit=$adapt_unit \
            src_valid_speakers=$src_valid_speakers adapt_fraction=$f)
      if stage_complete $out "$sig"; then
        log "Stage 2: skipped: $out is complete"
      else
        log "Stage 2: adaptation split with ser.bin.make_cross_corpus_fold: test $test_fraction of $tgt_dir (by $adapt_unit), train $src_dir + $f of $tgt_dir -> $out"
        python3 -m ser.bin.make_cross_corpus_fold --src-data $src_dir --tgt-data $tgt_dir \
          --test-fraction $test_fraction --adapt-fraction $f --adapt-unit $adapt_unit \
          --src-valid-speakers $src_valid_speakers --seed $split_seed --classes "$classes" $out
        mark_complete $out "$sig"
      fi
    done
  fi
fi

# ddir: <exp>/diffusion_[<split>_]<config hash>: the diffusion model (paper 2) trained on the
# source training utterances of this split, and its samples in fold.1/$syn.
syn=syn_s${sampling_steps}_n$num_synthetic; [ $sampler = ancestral ] || syn=${syn}_$sampler
ddir=
if [ $with_syn = true ] && [ $stop_stage -ge 3 ] && [ $stage -le 4 ]; then
  tag=diffusion_; [ $setup = split ] && tag=diffusion_${split}_
  ddir=$exp/$tag$(diffusion_hash $diffusion_conf $src_dir $dfold $src_dir)
fi

# train_aug_args AUG: train.py options of an augmentation setting.
train_aug_args() { aug_train_options $1 $ddir/fold.1/$syn; }

# experiment_dir MODEL AUG VARIANT: <exp>/<feat>_<model>_<aug>[_f<F>]_<config hash>.
experiment_dir() {
  local model=$1 aug=$2 hash name parent
  parent=$(fold_parent $3)
  hash=$(classifier_hash ${train_conf[$model]} $train_feats $parent/1 $parent/classes.txt $(train_aug_args $aug))
  name=${feat}_${model}_${aug_key[$aug]}
  [ $setup = adapt ] && name=${name}_f$3
  echo $exp/${name}_$hash
}

# need_folds: every fold of this setup, from stage 1.
need_folds() {
  for v in $variants; do
    [ -f $(fold_parent $v)/.complete ] || die "no split in $(fold_parent $v): run stage 2"
  done
}

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  need_folds
  if [ $with_syn = true ]; then
    # Paper 2: a diffusion model trained on the SOURCE training utterances only (conditioned on
    # their text, emotion and speaker), its synthetic segments and a quality report.
    [ -f $dfold/train.list ] || die "no fold $dfold: run stage 2"
    train_diffusion_models 3 $ddir 1 "the $src training utterances of $dfold" $dfold $ddir/fold.1 \
      $diffusion_conf $src_dir $src_dir
  fi
  for v in $variants; do
    parent=$(fold_parent $v)
    what=$src; [ $setup = adapt ] && what="$src + $v of $tgt"
    for aug in $augs; do
      for model in $models; do
        dir=$(experiment_dir $model $aug $v)
        log "Stage 3: training $model ($feat, aug $aug, seeds 1..$nrepeats) on $what with ser.bin.train -> $dir"
        # The job index is the seed: the repeats run in parallel.
        $cuda_cmd $(gpu_opts $ngpu $num_nodes) --max-jobs-run $max_jobs --num-threads $threads JOB=1:$nrepeats $dir/log/train.seedJOB.log \
          launch_train.sh --module ser.bin.train --ngpu $ngpu --num_nodes $num_nodes -- \
            --config ${train_conf[$model]} --feats-dir $train_feats \
            --fold-dir $parent/1 --classes $parent/classes.txt $(train_aug_args $aug) \
            --seed JOB --num-threads $threads --outdir $dir/fold.1/seedJOB
      done
    done
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  need_folds
  for v in $variants; do
    parent=$(fold_parent $v)
    for aug in $augs; do
      for model in $models; do
        dir=$(experiment_dir $model $aug $v)
        log "Stage 4: scoring $model ($aug, seeds 1..$nrepeats) on the $tgt test part with ser.bin.score: $dir"
        $cuda_cmd --max-jobs-run $max_jobs --num-threads $threads JOB=1:$nrepeats $dir/log/score_clean.seedJOB.log \
          python3 -m ser.bin.score --model-dir $dir/fold.1/seedJOB --feats-dir $train_feats \
            --utt-list $parent/1/test.list --ngpu $ngpu --out $dir/fold.1/seedJOB/test_clean
      done
    done
  done
fi

# note CORPUS: the corpus description of its recipe (local/corpus_note.txt), else its name.
note() { cat ../$1/local/corpus_note.txt 2>/dev/null || echo $1; }

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  args=() adapt_args=()
  for d in exp/*_to_*; do
    case $d in
      *_adapt)   # one experiment dir per adaptation split
        name=$(basename $d) name=${name%_adapt} s=${name%%_to_*} t=${name#*_to_}
        for a in $d/*/; do
          a=${a%/}
          [ -n "$(ls $a/*/fold.1/seed*/test_clean/done 2>/dev/null)" ] || continue
          adapt_args+=(--exp-dir $a --corpus-note "train $(note $s) + part of $(note $t) -> test $(note $t)")
        done ;;
      *)
        [ -n "$(ls $d/*/fold.1/seed*/test_clean/done 2>/dev/null)" ] || continue
        name=$(basename $d) s=${name%%_to_*} t=${name#*_to_}
        args+=(--exp-dir $d --corpus-note "train $(note $s) -> test $(note $t)") ;;
    esac
  done
  [ ${#args[@]} -gt 0 ] || [ ${#adapt_args[@]} -gt 0 ] || die "no scored runs in exp/*_to_*: run stages 3-4"
  if [ ${#args[@]} -gt 0 ]; then
    log "Stage 5: report with ser.bin.report: exp/*_to_* -> RESULTS.md"
    python3 -m ser.bin.report "${args[@]}" --out RESULTS.md --fig-dir figures --title "Cross-corpus speech emotion recognition" \
      --folds-note "Cross-corpus (paper 1, sec. 5.4; paper 2, Table 3): the single 'fold' of each pair trains on all of the source corpus (the classes both corpora share); a random part of the target (30 % by default, stratified by emotion; a target speaker may be in both parts) selects the model, the rest is the test set; no target speaker is seen in training; chance level is 25 % UAR. Each split is described in data/<pair>_folds/<split>/1/info.yaml."
  fi
  if [ ${#adapt_args[@]} -gt 0 ]; then
    log "Stage 5: adaptation report with ser.bin.adapt_report: exp/*_to_*_adapt -> RESULTS_adapt.md"
    python3 -m ser.bin.adapt_report "${adapt_args[@]}" --out RESULTS_adapt.md
  fi
fi
