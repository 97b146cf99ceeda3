#!/bin/bash
# results/mlp_nested_2026-12-05: train and score every candidate, seeds 1-3 (stages 3-4).
set -e
export EMODB=/work/shared/data/emodb RAVDESS=/work/shared/data/ravdess NOISE=/work/shared/data/noise
common="--stage 3 --stop_stage 4 --feats compare --feat compare --models mlp --nrepeats 3 --seed_ensemble false --max_jobs 2"
for c in l2 l0 l1 l1_idrop05 l1_lr1e-4 l1_wd1e-3 l1_h512 l3 l2_h512 l2_wd1e-3 l2_ls01 l4 l3_h512 l3_wd1e-3; do
  echo "=== $(date -u +%H:%M:%S) candidate $c"
  ./run.sh $common --conf_dir results/mlp_nested_2026-12-05/conf/$c
done
echo "=== $(date -u +%H:%M:%S) candidate mixup (l2)"
./run.sh $common --conf_dir results/mlp_nested_2026-12-05/conf/l2 --augs mixup
echo "=== $(date -u +%H:%M:%S) all done"
