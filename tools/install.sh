#!/usr/bin/env bash
# Installs what asrkit needs: system packages (espeak-ng, sox, libsndfile), a virtual environment
# in .venv, and asrkit with its pinned dependencies. Safe to run twice: a stamp of the inputs
# (setup.cfg, this script, the constraints) makes the second run a no-op.
#
#   TORCH_INDEX_URL=...   take torch from this index (e.g. a CUDA wheel index on a GPU box)
#   ASRKIT_VENV=DIR       where the environment lives (default: <repo>/.venv)
#   ASRKIT_SKIP_APT=1     do not touch system packages
#   ASRKIT_SLURM=1        also install munge and slurm-wlm (a one-node Slurm that the tests of
#                         utils/run_slurm.sh start on localhost); CI=true implies it
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${ASRKIT_VENV:-$root/.venv}
python=${PYTHON:-python3}

say() { echo "[install] $*" >&2; }

install_system_packages() {
  local missing=()
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || missing+=(sox)
  # libespeak-ng.so.1 gives phoneme events (true phone segmentation); libsndfile backs soundfile.
  ldconfig -p 2>/dev/null | grep -q 'libespeak-ng.so.1' || missing+=(libespeak-ng1)
  ldconfig -p 2>/dev/null | grep -q 'libsndfile.so.1' || missing+=(libsndfile1)
  if [ "${ASRKIT_SLURM:-0}" = 1 ] || [ "${CI:-}" = true ]; then
    { command -v munged || [ -x /usr/sbin/munged ]; } >/dev/null 2>&1 || missing+=(munge)
    { command -v slurmctld || [ -x /usr/sbin/slurmctld ]; } >/dev/null 2>&1 || missing+=(slurm-wlm)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "${ASRKIT_SKIP_APT:-0}" = 1 ]; then
    say "missing system packages: ${missing[*]} (ASRKIT_SKIP_APT=1: not installing)"; return 0
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  say "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
  local stamp="$venv/.asrkit-install-stamp" want
  want=$(cat "$root/setup.cfg" "$root/pyproject.toml" "$root/tools/install.sh" "$root/tools/constraints.txt" \
         | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
    return 0
  fi
  [ -x "$venv/bin/python" ] || { say "creating $venv"; "$python" -m venv "$venv"; }
  local pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
  # torch first, pinned: an unpinned torch (lhotse asks for one) would pull a multi-GB CUDA build.
  local torch_pin
  torch_pin=$(grep -E '^torch==' "$root/tools/constraints.txt")
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" install "$torch_pin" --index-url "$TORCH_INDEX_URL"
  else
    "${pip[@]}" install "$torch_pin"
  fi
  say "installing asrkit and its dependencies"
  "${pip[@]}" install -c "$root/tools/constraints.txt" -e "$root[dev,plot]"
  echo "$want" > "$stamp"
}

install_system_packages
install_python_packages
