#!/usr/bin/env bash
# utils/parse_options.sh: Kaldi-compatible command-line option parsing, to be *sourced*:
#
#   stage=0          # every variable defined before sourcing is an option
#   use_gpu=false    # an old value of true/false makes it a boolean option
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh || exit 1
#   [ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
#
# Semantics (those of Kaldi's utils/parse_options.sh, plus --name=value and --):
#   --foo-bar VALUE, --foo-bar=VALUE   set the shell variable foo_bar (dashes become underscores);
#                                      the variable must already be defined, else
#                                      "$0: invalid option --foo-bar" and exit 1.
#   boolean options                    if the old value is true or false, the new one must be too
#                                      (else exit 1).
#   --config FILE                      sources FILE (lines of foo=bar) before the other options are
#                                      applied, so options on the command line override it; a missing
#                                      or unreadable FILE is an error. May be given several times.
#   --help, -h                         prints $help_message to stderr (as Kaldi does) and exits 0.
#   --                                 ends the options (an extension; Kaldi has none).
# Parsing stops at the first argument that does not start with "--"; it and the rest stay in "$@".
# As in Kaldi, if a variable "cmd" is defined it must not be empty (catches --cmd "$unset_var").
# Safe under `set -euo pipefail`; the values are assigned verbatim (no eval of the value).

# The config variable always exists, so that --config is accepted by every script.
config=${config-}

# Pass 1: source every --config FILE among the leading options.
__po_i=1
__po_configs=()
while [ "$__po_i" -le $# ]; do
  __po_arg=${!__po_i}
  case "$__po_arg" in
    --help|-h|--) break ;;
    --config)
      __po_j=$((__po_i + 1))
      if [ "$__po_j" -gt $# ]; then
        echo "$0: option --config needs a value" >&2; exit 1
      fi
      __po_configs+=("${!__po_j}")
      __po_i=$((__po_i + 2)) ;;
    --config=*)
      __po_configs+=("${__po_arg#--config=}")
      __po_i=$((__po_i + 1)) ;;
    --*=*) __po_i=$((__po_i + 1)) ;;
    --*) __po_i=$((__po_i + 2)) ;;
    *) break ;;
  esac
done
for __po_f in ${__po_configs[@]+"${__po_configs[@]}"}; do
  if [ ! -f "$__po_f" ] || [ ! -r "$__po_f" ]; then
    echo "$0: missing config '$__po_f'" >&2; exit 1
  fi
  config=$__po_f
  # shellcheck disable=SC1090
  . "$__po_f"
done

# Pass 2: apply the options in order.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -z "${help_message-}" ]; then
        echo "No help found." >&2
      else
        printf '%b\n' "$help_message" >&2
      fi
      exit 0 ;;
    --) shift; break ;;
    --*=*)
      __po_opt=${1%%=*}
      __po_val=${1#*=}
      __po_n=1 ;;
    --*)
      __po_opt=$1
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2; exit 1
      fi
      __po_val=$2
      __po_n=2 ;;
    *) break ;;
  esac
  __po_name=${__po_opt#--}
  __po_name=${__po_name//-/_}
  if ! [[ "$__po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!__po_name+xxx}" ] \
      || [[ "$__po_name" == __po_* ]]; then
    echo "$0: invalid option $__po_opt" >&2; exit 1
  fi
  if [ "$__po_name" != config ]; then   # --config was handled in pass 1
    __po_old=${!__po_name}
    if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
      if [ "$__po_val" != true ] && [ "$__po_val" != false ]; then
        echo "$0: expected \"true\" or \"false\": $__po_opt $__po_val" >&2; exit 1
      fi
    fi
    printf -v "$__po_name" '%s' "$__po_val" 2>/dev/null \
      || { echo "$0: cannot set option $__po_opt (read-only variable?)" >&2; exit 1; }
  fi
  shift "$__po_n"
done

unset __po_i __po_j __po_arg __po_configs __po_f __po_opt __po_val __po_n __po_name __po_old

# Check for an empty argument to the --cmd option, which easily results from scripting errors.
if [ -n "${cmd+xxx}" ] && [ -z "$cmd" ]; then
  echo "$0: empty argument to --cmd option" >&2; exit 1
fi

true  # so that sourcing this file returns 0
