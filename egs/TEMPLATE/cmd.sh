# Job back-ends, Kaldi style: every parallel step runs as "$cmd JOB=1:N log.JOB.log program ...".
# local: utils/run.py runs the jobs on this machine; --max-jobs-run caps how many run at once.
# slurm: utils/slurm.py submits them as one sbatch job array and waits for it; conf/slurm.conf
#        maps --mem/--num-threads/--gpu to sbatch options (the recipe's own, else the shared
#        egs/TEMPLATE/conf/slurm.conf; copy it to conf/ and set your cluster's partitions there).
# Select with e.g. `cmd_backend=slurm ./run.sh`.
cmd_backend=${cmd_backend:-local}
case "$cmd_backend" in
  local)
    export train_cmd="run.py"
    export cuda_cmd="run.py --gpu 1"
    ;;
  slurm)
    slurm_conf=conf/slurm.conf   # the recipe's own, else the one next to this (linked) file
    [ -f $slurm_conf ] || slurm_conf=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/conf/slurm.conf
    export train_cmd="slurm.py --config $slurm_conf"
    export cuda_cmd="slurm.py --config $slurm_conf --gpu 1"
    ;;
  *) echo "cmd.sh: unknown cmd_backend '$cmd_backend' (expected: local or slurm)" >&2; exit 1 ;;
esac
