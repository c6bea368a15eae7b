#!/usr/bin/env bash
# The main job: the default recipe (egs/synth/s5) end to end on the embedded synthetic corpus,
# which needs no download. Extra arguments go to run.sh, e.g. ./tools/demo.sh --stage 2
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/tools/install.sh"
cd "$root/egs/synth/s5"
exec ./run.sh "$@"
