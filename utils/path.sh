# utils/path.sh: the environment of every recipe, to be *sourced* by egs/<corpus>/s5/path.sh:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/utils/path.sh"
#
# asrkit_root is ASRKIT_ROOT where that is set, else the folder above the utils/ this file is read
# through: a recipe's utils is a symlink to <asrkit_root>/utils, and `cd -P` follows it, so the root is
# found for a recipe at <asrkit_root>/egs/<corpus>/s5 and for a copy elsewhere whose utils links back.
asrkit_root=${ASRKIT_ROOT:-$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export asrkit_root

# The repository's virtual environment (tools/install.sh makes it), if there is one.
if [ -x "$asrkit_root/.venv/bin/python" ]; then
  export VIRTUAL_ENV=$asrkit_root/.venv
  case ":$PATH:" in
    *":$VIRTUAL_ENV/bin:"*) ;;
    *) export PATH=$VIRTUAL_ENV/bin:$PATH ;;
  esac
fi

export PYTHONPATH=$asrkit_root${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
export LC_ALL=C
