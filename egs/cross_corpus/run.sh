#!/usr/bin/env bash
# Cross-corpus SER (paper 1, sec. 5.4): train on all of corpus SRC, select models on a random 30 %
# of corpus TGT, test on the other 70 %, over the common 4 classes. Needs the features of both
# corpora from their own recipes (../SRC/data/all_<feat>, ../TGT/data/all_<feat>: stage 1 there).
# Stages:
#   0 import both feature dirs with corpus-prefixed ids (+ speed-perturbed source copies)
#   1 the 30/70 target split (one fold)   2 training (one job per repeat)
#   3 scoring on the 70 % test part        4 RESULTS.md (every pair in exp/)
# Usage: ./run.sh [--src emodb] [--tgt ravdess] [--models "cnn densenet_lstm_highway"] [--augs "none sp"] ...
set -euo pipefail

stage=0
stop_stage=100
src=emodb              # training corpus: a recipe ../<src> whose stage 1 has run
tgt=ravdess            # test corpus (30 % validation, 70 % test)
src_data=              # default ../<src>/data/all_<feat> (e.g. ../<src>/data/all4_<feat>)
tgt_data=              # default ../<tgt>/data/all_<feat>
feat=spec              # the classifiers' input feature; both corpora need the same config
classes="anger happiness neutral sadness"  # common labels; other utterances are dropped
dev_fraction=0.3       # part of each target class used for model selection (paper: 30 %)
split_seed=1           # seed of the random target split
models="cnn cnn_lstm densenet densenet_lstm densenet_lstm_highway"
augs=none              # any of: none sp mixup sp+mixup (sp needs ../<src>/data/all_sp{0.9,1.1}_<feat>)
nrepeats=3             # training runs with seeds 1..nrepeats (mean ± std over them)
max_jobs=2             # training jobs at once
threads=1              # torch threads per training job
ngpu=0                 # GPUs per training job (0: CPU)
conf_dir=              # training configs <conf_dir>/train_<model>.yaml; default ../<src>/conf
help_message=$(sed -n '2,9p' "$0")

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. utils/stage.sh

if [ $# -ne 0 ]; then echo "run.sh: unexpected arguments: $*" >&2; exit 1; fi
log() { echo "$(date '+%F %T') $*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

[ "$src" != "$tgt" ] || die "--src and --tgt are both '$src': cross-corpus needs two corpora"
src_data=${src_data:-../$src/data/all_$feat}
tgt_data=${tgt_data:-../$tgt/data/all_$feat}
conf_dir=${conf_dir:-../$src/conf}
pair=${src}_to_$tgt
src_dir=data/${src}_$feat        # imported dirs: ids prefixed by "<corpus>-"
tgt_dir=data/${tgt}_$feat
train_feats=data/${pair}_$feat   # both imported dirs in one (train.py reads one feats dir)
# The split: one fold (1/train.list = source, valid.list + test.list = target). Its parameters
# are in the path, so a new split gets new experiment dirs (the config hash covers the path).
split=dev${dev_fraction}_seed$split_seed
[ "$classes" = "anger happiness neutral sadness" ] || split=${split}_$(echo $classes | tr ' ' '-')
folds=data/${pair}_folds/$split
exp=exp/$pair

sp_factors=
case " $augs " in *" sp "*|*" sp+mixup "*) sp_factors="0.9 1.1" ;; esac
# sp_source FACTOR: the source recipe's speed-perturbed features (../emodb/data/all_sp0.9_spec).
sp_source() { echo "${src_data%_$feat}_sp$1_$feat"; }

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

# need_feats DIR CORPUS WHAT [RUN_OPTS]: DIR must be a finished feature dir of recipe ../CORPUS.
need_feats() {
  [ -f $1/feats.scp ] && [ -f $1/conf.yaml ] ||
    die "no features in $1 ($3): run egs/$2 first (cd ../$2 && ./run.sh --stop_stage 1 --feats $feat${4:-})"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  need_feats $src_data $src "source"
  need_feats $tgt_data $tgt "target"
  sp_dirs=
  for f in $sp_factors; do
    need_feats $(sp_source $f) $src "speed-perturbed source" " --augs sp"
    sp_dirs="$sp_dirs $(sp_source $f)"
  done
  # A model can only be tested on the features it was trained on.
  local/same_feature_config.py $src_data $tgt_data $sp_dirs
  for side in src tgt; do
    corpus=${!side}; in=${side}_data; in=${!in}; out=${side}_dir; out=${!out}
    sig=$(signature "in=$in" $in/feats.scp $in/utt2spk $in/utt2emo $in/conf.yaml prefix=$corpus-)
    if stage_complete $out "$sig"; then
      log "Stage 0: skipped: $out is complete"
    else
      log "Stage 0: import $in -> $out (ids prefixed by $corpus-)"
      import_dir $in $out $corpus
      mark_complete $out "$sig"
    fi
  done
  for f in $sp_factors; do
    in=$(sp_source $f) out=data/${src}_sp${f}_$feat
    sig=$(signature "in=$in" $in/feats.scp $in/utt2spk $in/utt2uniq $in/conf.yaml prefix=$src-)
    if stage_complete $out "$sig"; then
      log "Stage 0: skipped: $out is complete"
    else
      log "Stage 0: import $in -> $out (ids prefixed by $src-)"
      import_dir $in $out $src
      mark_complete $out "$sig"
    fi
  done
  sig=$(signature $src_dir/.complete $tgt_dir/.complete)
  if stage_complete $train_feats "$sig"; then
    log "Stage 0: skipped: $train_feats is complete"
  else
    log "Stage 0: combine $src_dir $tgt_dir -> $train_feats"
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

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for d in $src_dir $tgt_dir; do [ -f $d/.complete ] || die "$d is incomplete: run stage 0"; done
  sig=$(signature $src_dir/utt2spk $src_dir/utt2emo $tgt_dir/utt2spk $tgt_dir/utt2emo \
        "classes=$classes" dev_fraction=$dev_fraction split_seed=$split_seed)
  if stage_complete $folds "$sig"; then
    log "Stage 1: skipped: $folds is complete"
  else
    log "Stage 1: cross-corpus split: train $src_dir, valid $dev_fraction / test rest of $tgt_dir -> $folds"
    python3 -m ser.bin.make_cross_corpus_fold --src-data $src_dir --tgt-data $tgt_dir \
      --dev-fraction $dev_fraction --seed $split_seed --classes "$classes" $folds
    mark_complete $folds "$sig"
  fi
fi

# train_aug_args AUG: train.py options of an augmentation setting.
train_aug_args() {
  local sp="--aug-policy select --aug-dirs data/${src}_sp0.9_$feat --aug-dirs data/${src}_sp1.1_$feat"
  case $1 in
    none) echo "--mixup false" ;;
    mixup) echo "--mixup true" ;;
    sp) echo "--mixup false $sp" ;;
    sp+mixup) echo "--mixup true $sp" ;;
    *) die "unknown augmentation '$1' (none sp mixup sp+mixup)" ;;
  esac
}

# experiment_dir MODEL AUG: exp/<src>_to_<tgt>/<feat>_<model>_<aug>_<config hash>.
experiment_dir() {
  local model=$1 aug=$2 conf=$conf_dir/train_$1.yaml hash
  [ -f $conf ] || die "no training config $conf for model '$model' (give --conf_dir)"
  hash=$(python3 -m ser.bin.train --config $conf --feats-dir $train_feats --fold-dir $folds/1 \
           --classes $folds/classes.txt $(train_aug_args $aug) --print-config-hash)
  echo $exp/${feat}_${model}_${aug/+/_}_$hash
}

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  [ -f $folds/.complete ] || die "no split in $folds: run stage 1"
  for aug in $augs; do
    for model in $models; do
      dir=$(experiment_dir $model $aug)
      log "Stage 2: training $model ($feat, aug $aug, seeds 1..$nrepeats) on $src -> $dir"
      # The job index is the seed: the repeats run in parallel.
      $cuda_cmd --max-jobs-run $max_jobs --num-threads $threads JOB=1:$nrepeats $dir/log/train.seedJOB.log \
        python3 -m ser.bin.train --config $conf_dir/train_$model.yaml --feats-dir $train_feats \
          --fold-dir $folds/1 --classes $folds/classes.txt $(train_aug_args $aug) \
          --seed JOB --ngpu $ngpu --num-threads $threads --outdir $dir/fold.1/seedJOB
    done
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for aug in $augs; do
    for model in $models; do
      dir=$(experiment_dir $model $aug)
      log "Stage 3: scoring $model ($aug, seeds 1..$nrepeats) on the $tgt test part: $dir"
      $cuda_cmd --max-jobs-run $max_jobs --num-threads $threads JOB=1:$nrepeats $dir/log/score_clean.seedJOB.log \
        python3 -m ser.bin.score --model-dir $dir/fold.1/seedJOB --feats-dir $train_feats \
          --utt-list $folds/1/test.list --ngpu $ngpu --out $dir/fold.1/seedJOB/test_clean
    done
  done
fi

# note CORPUS: the corpus description of its recipe (local/corpus_note.txt), else its name.
note() { cat ../$1/local/corpus_note.txt 2>/dev/null || echo $1; }

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  args=()
  for d in exp/*_to_*; do
    [ -n "$(ls $d/*/fold.1/seed*/test_clean/done 2>/dev/null)" ] || continue
    name=$(basename $d) s=${name%%_to_*} t=${name#*_to_}
    args+=(--exp-dir $d --corpus-note "train $(note $s) -> test $(note $t)")
  done
  [ ${#args[@]} -gt 0 ] || die "no scored runs in exp/*_to_*: run stages 2-3"
  log "Stage 4: report: exp/*_to_* -> RESULTS.md"
  python3 -m ser.bin.report "${args[@]}" --out RESULTS.md --title "Cross-corpus speech emotion recognition" \
    --protocol-note "Cross-corpus (paper 1, sec. 5.4): the single 'fold' of each pair trains on all of the source corpus (the classes both corpora share); a random part of the target (30 % by default, stratified by emotion; a target speaker may be in both parts) selects the model, the rest is the test set; no target speaker is seen in training. Each split is described in data/<pair>_folds/<split>/1/info.yaml."
fi
