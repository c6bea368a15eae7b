#!/usr/bin/env bash
# Runs asrkit's test suite (installing what it needs first) on ASRKIT_TEST_WORKERS pytest-xdist workers
# (default 2; 0: in this process), a test module per worker at a time (--dist loadfile: a module's
# fixtures, e.g. a recipe run, are built once). Extra arguments go to pytest,
# e.g. ./tools/test.sh tests/features -k stack
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/install.sh"
cd "$root"
exec "${ASRKIT_VENV:-$root/.venv}/bin/python" -m pytest -n "${ASRKIT_TEST_WORKERS:-2}" --dist loadfile \
  --no-loadscope-reorder "$@"
