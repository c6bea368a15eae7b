#!/usr/bin/env bash
# utils/log.sh: a time-stamped logging helper, to be *sourced*:
#
#   . utils/log.sh
#   log "stage 2: computing features"
#   # -> 2025-01-31 12:00:00 (run.sh:42) stage 2: computing features      (on stderr)
#
# The file name (without its directory) and the line are those of the caller of log.

log() {
  local ts src=${BASH_SOURCE[1]:-$0}
  printf -v ts '%(%Y-%m-%d %H:%M:%S)T' -1
  printf '%s (%s:%s) %s\n' "$ts" "${src##*/}" "${BASH_LINENO[0]}" "$*" >&2
}
