#!/usr/bin/env bash
# Kaldi-style command-line option parsing for recipe scripts.
#
# Usage, in a script, after setting the default value of every option as a shell variable:
#
#   stage=0
#   nj=4
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh || exit 1
#   # the positional arguments are now in "$@"
#
# Semantics (as Kaldi's utils/parse_options.sh):
#   --foo-bar VALUE and --foo_bar VALUE set the existing variable foo_bar (dashes become
#       underscores); --foo-bar=VALUE is accepted too. An option whose variable has not been set
#       or declared is an error, since it is most likely a typo.
#   A variable whose current value is true or false only accepts true or false.
#   --config FILE sources FILE before any other option is applied, so command-line options win
#       over the config file whatever their order.
#   --help or -h prints $help_message (to stderr, as Kaldi) and exits 0; with help_options=true
#       it also lists the options block (the assignments above help_message=, with their
#       `# meaning` comments) through utils/options_help.sh.
#   Parsing stops at the first argument that is not an option (or after "--"); the remaining
#   arguments are left in "$@".
# Errors print one line naming the option and exit 1 (the file is sourced: the caller exits).
# All helper variables start with _po_ and are unset at the end.

# Pass 1: find the --config files among the options (not among the positional arguments).
_po_configs=()
_po_args=("$@")
_po_i=0
while [ "$_po_i" -lt "${#_po_args[@]}" ]; do
  _po_opt=${_po_args[$_po_i]}
  case "$_po_opt" in
    --help|-h|--) break ;;
    --config=*) _po_configs+=("${_po_opt#--config=}"); _po_i=$((_po_i + 1)) ;;
    --config)
      if [ $((_po_i + 1)) -ge "${#_po_args[@]}" ]; then
        echo "parse_options.sh: option --config needs a value" >&2; exit 1
      fi
      _po_configs+=("${_po_args[$((_po_i + 1))]}"); _po_i=$((_po_i + 2)) ;;
    --*=*) _po_i=$((_po_i + 1)) ;;
    --?*) _po_i=$((_po_i + 2)) ;;
    *) break ;;
  esac
done
for _po_config in ${_po_configs[@]+"${_po_configs[@]}"}; do
  if [ ! -f "$_po_config" ] || [ ! -r "$_po_config" ]; then
    echo "parse_options.sh: missing config file '$_po_config' (--config)" >&2; exit 1
  fi
  # shellcheck disable=SC1090
  . "$_po_config" || { echo "parse_options.sh: error in config file '$_po_config'" >&2; exit 1; }
done

# Pass 2: apply the options in order.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      printf '%b\n' "${help_message:-Usage: $0 [options] (no help message defined)}" >&2
      # help_options=true: the options block of $0 is listed too, generated so it cannot drift.
      if [ "${help_options:-false}" = true ]; then "${BASH_SOURCE[0]%/*}/options_help.sh" "$0" >&2; fi
      exit 0 ;;
    --) shift; break ;;
    --*=*) _po_opt=${1%%=*}; _po_value=${1#*=}; shift ;;
    --?*)
      _po_opt=$1
      if [ $# -lt 2 ]; then
        echo "parse_options.sh: option $_po_opt needs a value" >&2; exit 1
      fi
      _po_value=$2; shift 2 ;;
    *) break ;;
  esac
  [ "$_po_opt" = --config ] && continue   # already sourced in pass 1
  _po_name=${_po_opt#--}
  _po_name=${_po_name//-/_}
  if ! [[ $_po_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || ! declare -p "$_po_name" >/dev/null 2>&1; then
    echo "parse_options.sh: invalid option $_po_opt" >&2; exit 1
  fi
  _po_old=${!_po_name:-}
  if [ "$_po_old" = true ] || [ "$_po_old" = false ]; then
    if [ "$_po_value" != true ] && [ "$_po_value" != false ]; then
      echo "parse_options.sh: option $_po_opt takes true or false, got '$_po_value'" >&2; exit 1
    fi
  fi
  printf -v "$_po_name" '%s' "$_po_value" 2>/dev/null || {
    echo "parse_options.sh: cannot set variable $_po_name (option $_po_opt)" >&2; exit 1; }
done

unset _po_configs _po_args _po_i _po_opt _po_config _po_name _po_value _po_old
true  # a sourced file returns its last status; make it 0 for callers using set -e
