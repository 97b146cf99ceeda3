#!/usr/bin/env bash
# Start a training program on one process, on several GPUs/CPU processes of this machine
# (torchrun), or on several Slurm nodes (srun + torchrun). The program's own options follow `--`.
#
#   launch_train.sh [--ngpu N] [--nproc N] [--num_nodes M] [--port P] [--module M] [--dry-run]
#                   -- <program options>
#
#   --ngpu N       GPUs per node, one process each (0: CPU). Passed on to the program as --ngpu N,
#                  so do not repeat --ngpu after `--`.                                  default 0
#   --nproc N      processes per node: default N = --ngpu, or 1 with --ngpu 0 (set it to run
#                  data-parallel on CPU with the gloo backend, e.g. for tests)
#   --num_nodes M  nodes (default 1). M > 1 must run inside a Slurm allocation of M nodes
#                  (sbatch/salloc --nodes M): one torchrun per node is started with
#                  `srun --nodes M --ntasks-per-node 1`, meeting at the allocation's first node
#                  (--rdzv-backend c10d --rdzv-endpoint <first node>:<port>, --rdzv-id the job id)
#   --port P       rendezvous port of a multi-node run (default 29400 + SLURM_JOB_ID % 1000, so that
#                  jobs sharing a head node differ); one node uses torchrun --standalone, which
#                  picks a free port itself
#   --module M     the program (default ser.bin.train)
#   --dry-run      print the command instead of running it
#
# What runs:
#   1 process:     python3 -m M --ngpu N <program options>
#   1 node:        python3 -m torch.distributed.run --standalone --nnodes 1 --nproc_per_node N \
#                      -m M --ngpu N <program options>                    (= torchrun --standalone)
#   M nodes:       srun --nodes M --ntasks M --ntasks-per-node 1 --kill-on-bad-exit=1 \
#                      python3 -m torch.distributed.run --nnodes M --nproc_per_node N \
#                      --rdzv-id $SLURM_JOB_ID --rdzv-backend c10d --rdzv-endpoint HEAD:P \
#                      -m M --ngpu N <program options>
# $PYTHON (default python3) is the interpreter; path.sh puts the venv's first on PATH.
# The experiment dir must be on a file system that every node sees (rank 0 writes, all read).
set -euo pipefail

ngpu=0
nproc=
num_nodes=1
port=
module=ser.bin.train
dry_run=false
python=${PYTHON:-python3}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 1
}
die() { echo "launch_train.sh: error: $*" >&2; exit 1; }
is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    --ngpu) [ $# -ge 2 ] || usage; ngpu=$2; shift 2 ;;
    --nproc|--nproc_per_node|--nproc-per-node) [ $# -ge 2 ] || usage; nproc=$2; shift 2 ;;
    --num_nodes|--num-nodes) [ $# -ge 2 ] || usage; num_nodes=$2; shift 2 ;;
    --port) [ $# -ge 2 ] || usage; port=$2; shift 2 ;;
    --module) [ $# -ge 2 ] || usage; module=$2; shift 2 ;;
    --dry-run|--dry_run) dry_run=true; shift ;;
    -h|--help) usage ;;
    *) die "unknown option '$1' (program options go after '--')" ;;
  esac
done
[ $# -gt 0 ] || die "no program options (give them after '--')"
is_count "$ngpu" || die "--ngpu '$ngpu' is not a count"
is_count "$num_nodes" && [ "$num_nodes" -ge 1 ] || die "--num_nodes '$num_nodes' must be >= 1"
if [ -z "$nproc" ]; then
  if [ "$ngpu" -gt 0 ]; then nproc=$ngpu; else nproc=1; fi
fi
is_count "$nproc" && [ "$nproc" -ge 1 ] || die "--nproc '$nproc' must be >= 1"
[ "$ngpu" -eq 0 ] || [ "$nproc" -eq "$ngpu" ] || die "--nproc $nproc with --ngpu $ngpu: one process per GPU"
for a in "$@"; do
  case "$a" in --ngpu|--ngpu=*) die "give --ngpu to launch_train.sh, not after '--'" ;; esac
done

if [ "$num_nodes" -gt 1 ]; then
  [ -n "${SLURM_JOB_ID:-}" ] && [ -n "${SLURM_JOB_NODELIST:-}" ] || \
    die "--num_nodes $num_nodes needs a Slurm allocation of $num_nodes nodes (run it under sbatch/salloc --nodes $num_nodes)"
  if [ -n "${SLURM_JOB_NUM_NODES:-}" ] && [ "$SLURM_JOB_NUM_NODES" -lt "$num_nodes" ]; then
    die "--num_nodes $num_nodes but the Slurm job has $SLURM_JOB_NUM_NODES node(s)"
  fi
  hosts=$(scontrol show hostnames "$SLURM_JOB_NODELIST") || die "scontrol show hostnames '$SLURM_JOB_NODELIST' failed"
  head=${hosts%%$'\n'*}
  [ -n "$head" ] || die "cannot get the first node of '$SLURM_JOB_NODELIST' from scontrol"
  port=${port:-$((29400 + SLURM_JOB_ID % 1000))}
  cmd=(srun --nodes "$num_nodes" --ntasks "$num_nodes" --ntasks-per-node 1 --kill-on-bad-exit=1
       "$python" -m torch.distributed.run --nnodes "$num_nodes" --nproc_per_node "$nproc"
       --rdzv-id "$SLURM_JOB_ID" --rdzv-backend c10d --rdzv-endpoint "$head:$port"
       -m "$module" --ngpu "$ngpu" "$@")
elif [ "$nproc" -gt 1 ]; then
  cmd=("$python" -m torch.distributed.run --standalone --nnodes 1 --nproc_per_node "$nproc"
       -m "$module" --ngpu "$ngpu" "$@")
else
  cmd=("$python" -m "$module" --ngpu "$ngpu" "$@")
fi

if $dry_run; then
  printf '%q ' "${cmd[@]}" | sed 's/ $//'
  echo
  exit 0
fi
exec "${cmd[@]}"
