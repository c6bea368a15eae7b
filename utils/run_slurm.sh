#!/usr/bin/env bash
# utils/run_slurm.sh: Kaldi-style job runner (a Slurm array job submitted with sbatch --wait).
#   utils/run_slurm.sh [options] JOB=1:N exp/x/log/step.JOB.log command ... JOB ...
#   utils/run_slurm.sh [options] exp/x/log/step.log command ...
# The work is done by utils/jobrun.py (Python 3 standard library only); see its docstring.
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
JOBRUN_PARENT=$PPID JOBRUN_PROG=$(basename "$0") exec python3 "$here/jobrun.py" slurm "$@"
