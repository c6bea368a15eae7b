# egs/<corpus>/s5/path.sh: the recipe's environment (sourced by run.sh: `. ./path.sh`).
# Assumes the recipe lives at <asrkit_root>/egs/<corpus>/s5; ASRKIT_ROOT overrides that.
asrkit_root=${ASRKIT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
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
