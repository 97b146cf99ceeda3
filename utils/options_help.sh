#!/usr/bin/env bash
# Prints the options of a script that uses utils/parse_options.sh, generated from its options
# block (the `name=default   # meaning` lines above its `help_message=` line), so that --help
# cannot drift from the defaults. parse_options.sh calls it on --help when help_options=true.
#   utils/options_help.sh SCRIPT
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: utils/options_help.sh SCRIPT" >&2; exit 1; fi
if [ ! -f "$1" ]; then echo "options_help.sh: no such script: $1" >&2; exit 1; fi
if ! grep -q '^help_message=' "$1"; then
  echo "options_help.sh: $1: no help_message= line ending the options block" >&2; exit 1
fi
awk '
  /^help_message=/ { exit }
  /^[A-Za-z_][A-Za-z0-9_]*=/ {
    name = $0; sub(/=.*/, "", name)
    rest = substr($0, length(name) + 2)
    if (rest ~ /^"/) { match(rest, /^"[^"]*"/) } else { match(rest, /^[^ \t]*/) }
    value = substr(rest, 1, RLENGTH); rest = substr(rest, RLENGTH + 1)
    meaning = ""
    if (rest ~ /^[ \t]*#/) { meaning = rest; sub(/^[ \t]*#[ \t]*/, "", meaning) }
    if (value == "" || value == "\"\"") value = "\"\""
    names[++n] = name; values[n] = value; meanings[n] = meaning
    # long defaults (a model list) do not push every meaning far right
    if (length(name) + length(value) > width && length(name) + length(value) < 28) width = length(name) + length(value)
  }
  END {
    if (!n) exit
    print "Options (--name VALUE, shown with its default):"
    for (i = 1; i <= n; i++)
      printf "  --%s %-*s  %s\n", names[i], width - length(names[i]), values[i], meanings[i] == "" ? "(undocumented)" : meanings[i]
  }' "$1"
