# Sourced by run.sh: one run at a time per recipe dir (runs share data/, exp/ and temporary names).
# lock_recipe_dir takes a flock on .run.lock through fd 9 and names the holder in the file. Every
# process started from run.sh inherits fd 9, and the local job runner passes it on to its jobs
# (SER_LOCK_FD), so a run is refused while any process of an earlier, killed run still writes;
# a lock whose processes are all gone is no obstacle (the kernel drops it with the last fd).
# SER_OWNER_PID tells the job runner whose death must stop the jobs (run.sh killed by a signal).
lock_recipe_dir() {
  local lock=.run.lock holder pids
  if ! exec 9<>"$lock"; then
    echo "$(basename "$0"): cannot open the lock file $PWD/$lock" >&2; exit 1
  fi
  if ! flock -n 9; then
    holder=$(head -n 1 "$lock" 2>/dev/null || true)
    local pid=${holder#pid }; pid=${pid%%,*}
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      echo "$(basename "$0"): another run is active in $PWD: $holder (lock $lock)" >&2
    else
      pids=$(find /proc/[0-9]*/fd -lname "$(pwd -P)/$lock" 2>/dev/null | cut -d/ -f3 | sort -un | tr '\n' ' ' || true)
      echo "$(basename "$0"): a killed run's processes still hold $PWD/$lock (${holder:-no holder line};" \
           "still running: pids ${pids:-unknown}): wait for them or kill them" >&2
    fi
    exit 1
  fi
  : > "$lock"
  printf 'pid %s, started %s: %s\n' $$ "$(date '+%F %T')" "$(tr '\0' ' ' < /proc/$$/cmdline)" >&9
  export SER_LOCK_FD=9 SER_OWNER_PID=$$
}
