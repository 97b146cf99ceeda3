#!/usr/bin/env bash
# Usage: train_aug_options.sh AUG DATA FEAT SYN_DIR
# Prints ser.bin.train's options for an augmentation setting. Paper 1: none, sp (speed perturbation
# x0.9/x1.1: one copy per segment drawn from DATA_sp0.9_FEAT, DATA_sp1.1_FEAT), mixup, sp+mixup.
# Paper 2: syn (synthetic only), real+syn, real+syn+mixup, with the synthetic data dir SYN_DIR.
# One place for this map, so a new augmentation is one edit for every recipe. Exit 1 on an unknown AUG.
if [ $# -ne 4 ]; then
  echo "Usage: $0 AUG DATA FEAT SYN_DIR" >&2; exit 1
fi
aug=$1 data=$2 feat=$3 syn=$4
sp="--aug-policy select --aug-dirs ${data}_sp0.9_$feat --aug-dirs ${data}_sp1.1_$feat"
case $aug in
  none) echo "--mixup false" ;;
  mixup) echo "--mixup true" ;;
  sp) echo "--mixup false $sp" ;;
  sp+mixup) echo "--mixup true $sp" ;;
  syn) echo "--mixup false --train-source synthetic --synthetic-dirs $syn" ;;
  real+syn) echo "--mixup false --train-source both --synthetic-dirs $syn" ;;
  real+syn+mixup) echo "--mixup true --train-source both --synthetic-dirs $syn" ;;
  *) echo "$(basename "$0"): unknown augmentation '$aug' (none sp mixup sp+mixup syn real+syn real+syn+mixup)" >&2
     exit 1 ;;
esac
