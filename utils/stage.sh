# Sourced by run.sh: skip-if-complete bookkeeping for recipe stages.
# A stage's output dir holds `.complete` with the signature of its inputs (config contents, source
# data, options); a stage is skipped only when that signature is unchanged, so a changed config
# or a killed stage (no `.complete`) is redone, never silently reused.

# signature ARG...: one line naming the inputs: files are hashed by content, other args kept.
signature() {
  local a
  for a in "$@"; do
    if [ -f "$a" ]; then
      printf '%s=%s ' "$a" "$(sha1sum < "$a" | cut -c1-12)"
    else
      printf '%s ' "$a"
    fi
  done
  echo
}

# stage_complete DIR SIG: true when DIR/.complete holds SIG.
stage_complete() {
  [ -f "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$2" ]
}

# mark_complete DIR SIG: records SIG as DIR's signature (atomically).
mark_complete() {
  printf '%s\n' "$2" > "$1/.complete.tmp" && mv "$1/.complete.tmp" "$1/.complete"
}

# check_int NAME MIN: the option --NAME holds an integer >= MIN, else a one-line error and exit 1
# (a bad --stage would otherwise make every stage guard's [ ] fail: nothing runs, exit 0).
check_int() {
  local v=${!1}
  if ! [[ $v =~ ^-?[0-9]{1,9}$ ]] || [ "$v" -lt "$2" ]; then
    echo "$(basename "$0"): option --$1 needs an integer >= $2, got '$v'" >&2; exit 1
  fi
}

# check_number NAME: the option --NAME holds a non-negative decimal number.
check_number() {
  if ! [[ ${!1} =~ ^[0-9]*\.?[0-9]+$ ]]; then
    echo "$(basename "$0"): option --$1 needs a non-negative number, got '${!1}'" >&2; exit 1
  fi
}

# pending N PATTERN: the numbers k in 1..N for which PATTERN with FOLD replaced by k names no file
# (e.g. the folds not trained yet: pending 10 exp/x/fold.FOLD/seed1/done).
pending() {
  local k
  for k in $(seq "$1"); do [ -e "${2//FOLD/$k}" ] || echo "$k"; done
}

# job_ranges K...: ascending numbers as job ranges of the job runners (1 2 3 5 -> 1:3 5:5), so that
# only the unfinished jobs run and the logs of the finished ones are kept.
job_ranges() {
  local first= last= k
  for k in "$@"; do
    if [ -n "$last" ] && [ "$k" -eq $((last + 1)) ]; then last=$k; continue; fi
    [ -z "$first" ] || echo "$first:$last"
    first=$k; last=$k
  done
  [ -z "$first" ] || echo "$first:$last"
}

# newer_than_all FILE INPUT...: FILE exists and no existing INPUT is newer (as ser.eval.scoring).
newer_than_all() {
  local f=$1 p; shift
  [ -e "$f" ] || return 1
  for p in "$@"; do [ ! "$p" -nt "$f" ] || return 1; done
}
