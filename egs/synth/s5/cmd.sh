# egs/<corpus>/s5/cmd.sh: how the recipe runs its jobs (sourced by run.sh).
# Every runner is called as Kaldi's run.pl is:
#   $train_cmd [options] JOB=1:N exp/x/log/step.JOB.log command ... JOB ...
# and the options given there are added to (and override) those given here.
#
# On this machine: up to --max-jobs-run jobs at once (default: the number of CPUs).
# Resource options (--mem, --gpus, --time, --partition, --num-threads) are accepted and ignored.
# train_cmd: network training and the teacher's labelling (stages 7, 9-15; --gpus added from --ngpu);
# decode_cmd: decoding (every decode_<set> of stages 4-15, with --num-threads <nj>; utils/decode_data.sh).
# Features, GMMs and senones (stages 2-6) run on this machine in --nj processes.
export train_cmd="utils/run_local.sh"
export decode_cmd="utils/run_local.sh"

# On a Slurm cluster (sbatch array jobs; options pass through to sbatch, --gpu 0 means none):
# export train_cmd="utils/run_slurm.sh --mem 8G --gpus 1 --time 24:00:00"
# export decode_cmd="utils/run_slurm.sh --mem 4G --time 4:00:00"
# (add --partition NAME, --account NAME, ... as your site requires)
