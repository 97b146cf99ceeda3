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
