#!/usr/bin/env bash
# Runs asrkit's test suite (installing what it needs first). Extra arguments go to pytest,
# e.g. ./tools/test.sh tests/features -k stack
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/install.sh"
cd "$root"
exec "${ASRKIT_VENV:-$root/.venv}/bin/python" -m pytest "$@"
