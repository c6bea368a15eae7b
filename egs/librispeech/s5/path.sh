# egs/<corpus>/s5/path.sh: the recipe's environment (sourced by run.sh: `. ./path.sh`). The settings
# every recipe shares are in utils/path.sh: asrkit_root (ASRKIT_ROOT, else the repository that the
# recipe's utils symlink points into), the repository's .venv on PATH, PYTHONPATH, PYTHONUNBUFFERED=1
# and LC_ALL=C. Settings of this recipe alone go below.
. "$(dirname "${BASH_SOURCE[0]}")/utils/path.sh"
