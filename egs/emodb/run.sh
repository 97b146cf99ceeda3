#!/usr/bin/env bash
# Speech emotion recognition on Berlin EmoDB (robust_ser_densenet_lstm_highway, diffusion_augmented_ser).
#   ./run.sh [--stage N] [--stop_stage N] [--nj N] [--four_class true|false] ...
# Stages: 0 data prep, 1 features (spectrogram and mel).
set -euo pipefail

stage=0
stop_stage=100
nj=2                       # parallel jobs for feature extraction
four_class=false           # true: the papers' 4 classes (anger, happiness, neutral, sadness)
feats="spec mel"           # feature types to extract (conf/feats/<type>.yaml)
help_message=$(sed -n '2,4p' "$0")

. ./path.sh
. ./cmd.sh
. ./db.sh
. utils/parse_options.sh
. utils/stage.sh

if [ $# -ne 0 ]; then echo "run.sh: unexpected arguments: $*" >&2; exit 1; fi
log() { echo "$(date '+%F %T') $*"; }

dset=all; [ "$four_class" = true ] && dset=all4
data=data/$dset

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -z "$EMODB" ]; then
    EMODB=downloads/emodb
    local/download.sh "$EMODB"
  fi
  sig=$(signature "EMODB=$(cd "$EMODB" 2>/dev/null && pwd || echo "$EMODB")" four_class=$four_class \
        local/prepare_emodb.py local/sentences.txt)
  if stage_complete $data "$sig"; then
    log "Stage 0: skipped: $data is complete"
  else
    log "Stage 0: data preparation: $EMODB -> $data"
    local/data.sh --four-class $four_class "$EMODB" $data
    mark_complete $data "$sig"
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for f in $feats; do
    conf=conf/feats/$f.yaml
    [ -f $conf ] || { echo "run.sh: feats: no config $conf" >&2; exit 1; }
    sig=$(signature $conf $data/wav.scp $data/.complete)
    if stage_complete ${data}_$f "$sig"; then
      log "Stage 1: skipped: ${data}_$f is complete"
      continue
    fi
    log "Stage 1: feature extraction ($f, nj=$nj): $data -> ${data}_$f"
    make_feats.sh --nj $nj --cmd "$train_cmd" --config $conf $data ${data}_$f feats/${dset}_$f
    validate_data_dir.py ${data}_$f
    mark_complete ${data}_$f "$sig"
  done
fi
