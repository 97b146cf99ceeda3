# Job back-ends, Kaldi style: every parallel step runs as "$cmd JOB=1:N log.JOB.log program ...".
# utils/run.py runs the jobs on this machine; --max-jobs-run caps how many run at once.
# A cluster back-end (Slurm) will be selectable here behind the same interface.
cmd_backend=${cmd_backend:-local}
case "$cmd_backend" in
  local)
    export train_cmd="run.py"
    export cuda_cmd="run.py --gpu 1"
    ;;
  *) echo "cmd.sh: unknown cmd_backend '$cmd_backend' (expected: local)" >&2; exit 1 ;;
esac
