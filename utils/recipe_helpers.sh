# Sourced by egs/TEMPLATE/run.sh and egs/cross_corpus/run.sh (after path.sh and cmd.sh): the
# steps both drivers share. The augmentation settings themselves are ser.augment.settings's
# (through `python3 -m ser.bin.aug_setting`).

log() { echo "$(date '+%F %T') $*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

# conf_file DIR NAME: the config NAME of config dir DIR (conf, conf/tuning, ../emodb/conf, ...): DIR/NAME
# when the recipe has it, else the shared default of the same sub-dir of egs/TEMPLATE/conf (DIR
# conf/tuning -> egs/TEMPLATE/conf/tuning/NAME). A recipe keeps only the configs it changes.
conf_file() {
  local dir=${1%/} name=$2 sub shared
  if [ -f "$dir/$name" ]; then echo "$dir/$name"; return; fi
  sub=/$dir; sub=${sub##*/conf}      # what follows the last path component `conf`: '' or /tuning
  case $sub in ""|/*) ;; *) die "no config $dir/$name" ;; esac
  [ "/$dir" != "$sub" ] || die "no config $dir/$name"
  shared=$SER_ROOT/egs/TEMPLATE/conf$sub/$name
  [ -f "$shared" ] || die "no config $dir/$name (nor the shared default $shared)"
  echo "$shared"
}

# gpu_opts NGPU NUM_NODES: the resources a training job asks the job back-end for (local: ignored).
gpu_opts() { echo "--gpu $1$([ "$2" -gt 1 ] && echo " --num-nodes $2")"; }

# read_augs DATA FEAT AUG...: asks the registry once (at top level: an unknown setting stops the
# run with its one-line error) and keeps, per setting, aug_key[AUG] (its spelling in dir names),
# aug_syn[AUG] (true: trains on synthetic data), aug_sp[AUG] (the speed-perturbed copies of DATA it
# trains on) and aug_opts[AUG] (its ser.bin.train options); with_syn is true when any uses synthetic data.
declare -A aug_key=() aug_syn=() aug_sp=() aug_opts=()
read_augs() {
  local data=$1 feat=$2 table a key syn sp opts; shift 2
  table=$(python3 -m ser.bin.aug_setting table --data $data --feat $feat "$@") || exit 1
  with_syn=false
  while read -r a key syn sp opts; do
    aug_key[$a]=$key aug_syn[$a]=$syn aug_opts[$a]=$opts
    aug_sp[$a]=; [ "$sp" = - ] || aug_sp[$a]=${sp//,/ }
    [ $syn = false ] || with_syn=true
  done <<< "$table"
}
# aug_train_options AUG [SYN_DIR]: ser.bin.train's options for a setting (SYN_DIR: the fold's
# synthetic data, for settings that train on it).
aug_train_options() { local o=${aug_opts[$1]}; echo ${o//@SYN_DIR@/${2:-}}; }

# check_trained_on_folds DIR FOLDS: an experiment dir's config hash names fold dirs by path, not by
# what they hold, so DIR records the digest of FOLDS' lists (DIR/folds.md5) when it is first used
# and is refused when FOLDS now holds other speakers (an edited conf/folds.yaml): resuming or
# re-scoring its models could put their training speakers into a test list.
check_trained_on_folds() {
  local dir=$1 folds=$2 digest
  digest=$(cat $folds/classes.txt $folds/[0-9]*/{train,valid,test}.list | md5sum | cut -d' ' -f1)
  if [ -f $dir/folds.md5 ]; then
    [ "$(cat $dir/folds.md5)" = "$digest" ] || die "$dir was trained on other folds than $folds holds now" \
      "(conf/folds.yaml or the data changed): move it away, or give the new scheme its own --folds_conf"
  else
    mkdir -p $dir && echo $digest > $dir/folds.md5.tmp && mv $dir/folds.md5.tmp $dir/folds.md5
  fi
}

# classifier_hash CONF FEATS_DIR FOLD_DIR CLASSES TRAIN_OPTION...: the config hash of a classifier
# experiment (part of its dir name: a changed config or data gets a new dir).
classifier_hash() {
  local conf=$1 feats=$2 fold=$3 classes=$4; shift 4
  python3 -m ser.bin.train --config $conf --feats-dir $feats --fold-dir $fold --classes $classes "$@" \
    --print-config-hash
}
# diffusion_hash CONF FEATS_DIR FOLD_DIR TEXT_DIR: the config hash of a diffusion experiment.
diffusion_hash() {
  python3 -m ser.bin.train_diffusion --config $1 --feats-dir $2 --fold-dir $3 --text-dir $4 --print-config-hash
}

# train_diffusion_models STAGE DDIR M WHAT FOLD OUT CONF FEATS TEXT_DIR: paper 2's diffusion step, M
# jobs (WHAT: their training data, for the log):
# job JOB trains a diffusion model on fold dir FOLD's training utterances (ser.bin.train_diffusion)
# into OUT, samples $num_synthetic segments per combination with S=$sampling_steps into OUT/$syn
# (ser.bin.generate) and writes their quality report (ser.bin.diffusion_report). FOLD and OUT may
# contain JOB or a $(...) that each job's shell expands. Reads ngpu, num_nodes, max_jobs, threads,
# num_synthetic, sampling_steps, sampler, syn, griffin_lim.
train_diffusion_models() {
  local stage=$1 ddir=$2 m=$3 what=$4 fold=$5 out=$6 conf=$7 feats=$8 text=$9 j todo range
  # Trained models (`done`) are not started again, so that their job logs keep the training's.
  todo=$(for j in $(seq $m); do [ -e "$(eval "echo ${out//JOB/$j}")/done" ] || echo $j; done)
  if [ -z "$todo" ]; then
    log "Stage $stage: skipped ($m diffusion models done): $ddir"
  else
    log "Stage $stage: training the diffusion model on $what with ser.bin.train_diffusion: jobs $(echo $todo) of $m -> $ddir"
  fi
  for range in $(job_ranges $todo); do
    $cuda_cmd $(gpu_opts $ngpu $num_nodes) --max-jobs-run $max_jobs --num-threads $threads JOB=$range $ddir/log/train.JOB.log \
      launch_train.sh --module ser.bin.train_diffusion --ngpu $ngpu --num_nodes $num_nodes -- \
        --config $conf --feats-dir $feats --fold-dir "$fold" --text-dir $text --seed 1 \
        --num-threads $threads --outdir "$out"
  done
  log "Stage $stage: sampling $num_synthetic synthetic segment(s) per combination with S=$sampling_steps ($sampler) with ser.bin.generate (report: ser.bin.diffusion_report): $ddir/fold.*/$syn"
  $cuda_cmd --max-jobs-run $max_jobs --num-threads $threads JOB=1:$m $ddir/log/generate_$syn.JOB.log \
    python3 -m ser.bin.generate --model-dir "$out" --num-per-combination $num_synthetic \
      --sampling-steps $sampling_steps --sampler $sampler --seed 1 --out-data "$out/$syn" --out-feats "$out/$syn/ark" \
      --ngpu $ngpu --num-threads $threads
  $train_cmd --max-jobs-run $max_jobs JOB=1:$m $ddir/log/report_$syn.JOB.log \
    python3 -m ser.bin.diffusion_report --real-feats $feats --utt-list "$fold/train.list" \
      --synthetic "$out/$syn" --out "$out/$syn/report" --griffin-lim $griffin_lim
}
