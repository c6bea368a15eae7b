# utils/shared_stages.sh: the steps every recipe is made of, as shell functions that take their input
# and output dirs as arguments, like Kaldi's steps/*.sh, and the driver that runs a recipe's stages.
# Sourced by every recipe after parse_options.sh and utils/log.sh. A recipe's run.sh defines stage_2 ...
# stage_16 (design.md's numbers) as calls of these steps, so that it shows the data flow:
#
#   stage_4() {
#     train_mono data/mfcc/cuts_train_sup.jsonl.gz data/lang exp/mono
#     gmm_decode data/lang data/lm/G.fst data/mfcc exp/mono
#   }
#   shared_stages 2 16        # runs stage_N for each N in $stage..$stop_stage within 2..16
#
# and its own stages 0-1 (the corpus). A corpus that needs more than the shared steps does that in its
# own stage_N (egs/synth/s5 scores the GMMs' alignments against the true phone times; egs/librispeech/s5
# samples its LM corpus before stage 3's steps).
#
# Arguments name dirs and files; <data> is the recipe's data dir as stages 1-2 leave it (<set>/text,
# fbank/cuts_<set>.jsonl.gz, mfcc/cuts_<set>.jsonl.gz, cmvn.npz), a senone dir what make_senones writes
# (tree, cuts_<set>.jsonl.gz, senone_counts.npy, graph/). The steps' options are the recipe's variables
# (defaults in brackets):
#   sets            every set: train_sup, train_unsup (optional: stages 10-15 need it), evaluation sets
#   eval_sets       the sets decoded and reported; dev_set [dev] validates the networks and picks the LM
#                   weight of a test set; test_X takes it from dev_X when dev_X is an evaluation set
#   nj              parallel jobs (CPU); ngpu [0]: networks on N GPUs (1: one process; N>1: torchrun,
#                   NCCL, --sync $sync [ddp] with $sync_opts; torchrun_opts [--standalone] for several nodes)
#   train_cmd, decode_cmd   job runners (cmd.sh): network training and labelling; decoding
#   lexicon_opts    prepare_lang's source: "--lexicon FILE ...", "--cmudict", "--graphemic ..."; vocab_text
#                   [""] a word list or plain text (no utterance ids) whose words join the lexicon
#   lm_order, lm_prune, lm_text [""]: extra LM training text besides train_sup's transcripts (plain
#                   sentences, one per line, no utterance ids)
#   mono_gauss, tri_leaves, tri_gauss, num_senones, senone_tree_thresh, gmm_lm_weights, gmm_decode_opts
#   teacher_conf, student_conf, nnet_opts [""] (TrainConfig overrides of every network), ssl_opts [""]
#   (more train_student options of the students trained on more than train_sup: stages 11-15; every
#   student of stages 9 and 11-15 trains with --equal-updates true, a budget of exactly the updates of
#   stage 9's student, the comparison at equal training length; ssl_opts="--equal-updates false
#   --num-epochs N" gives them N passes over all their data instead), nnet_lm_weights, nnet_decode_opts
#   [""], stream_chunk, topk, pseudo_shard_size [500], nnet_avg [1] (N > 1: every network decodes, labels and
#   realigns with the mean of its last N epoch checkpoints, <dir>/avg.pt, instead of best.pt)
#   labelled_lr_mult: LR multiplier on labelled batches, of every student; supervised_lr_mult [""]: the
#   supervised and oracle students' ("": labelled_lr_mult, the controlled comparison; 1.0: plain
#   training, as before)
#   seeds [""]: the students' training seeds (stages 9, 11-14; the teacher and its pseudo-labels once):
#   "" or one seed: exp/<system>/ as always; several ("1 2 3"): exp/<system>/seed<S>/ each, the report
#   giving means, standard deviations and a test over seeds and utterances
#   sweep [false], sweep_ratios ["1 2"], sweep_seed [0], sweep_order [shuffle]; dist [false], dist_modes ["ddp gtc bmuf"], dist_nproc [2], dist_opts
#   dist_sim_workers [""] (e.g. "1 4 16 64": stage 15 also trains with N simulated workers), dist_sim_modes
#   ["ddp gtc bmuf"], dist_sim_decode [true]
#   realign_with_teacher [false]: true: after the teacher (stage 7), its realignment of train_sup and $dev_set
#   (realign_with_network) and a second teacher trained on it; the recipe names their dirs (egs/synth/s5:
#   exp/senone_realign, exp/teacher_realign, decoded in stage 8, and exp/student_sup_realign in stage 9,
#   which then runs after stage 8, not in a lane beside 7: it needs the realignment)
#   report_title
#   speed_perturb [""]: speed factors of train_sup's perturbed copies, e.g. "0.9 1.1" (Kaldi's 3-way
#   perturbation without the 1.0 that is train_sup itself); "" (the default): none, and every step does
#   exactly what it did before the option. The recipe calls check_speed_perturb after parse_options.sh.
# Outputs: those of design.md's stage table (data/, exp/<system>/, RESULTS.md).

# forced [OPT]: OPT (default --force) when the recipe runs with --force true, so that stages 1-6 redo
# their done work; without it they stop on inputs or options changed since (asrkit.utils.fingerprint).
forced() { if [ "${force:-false}" = true ]; then echo "${1:---force}"; fi; }

shared_stages() {
  local n first=$1 last=$2 lanes=()
  _run() { [ $first -le $1 ] && [ $last -ge $1 ] && [ $stage -le $1 ] && [ $stop_stage -ge $1 ]; }
  _in_lane() { [[ " ${lanes[*]} " == *" $1 "* ]]; }
  for n in $(seq $first $last); do
    _run $n || continue
    _in_lane $n && continue
    if [ $n -ge 14 ]; then lane_wait_all; fi
    if [ "${ngpu:-0}" -eq 0 ] && [ $n -eq 7 ]; then  # CPU: lanes (see lane_start below)
      local s students=()
      local lane=(9 13)
      # stage 9's realigned student needs stage 7's realignment: it runs after 8 in the foreground
      if [ "${realign_with_teacher:-false}" = true ]; then lane=(13); fi
      for s in "${lane[@]}"; do if _run $s; then students+=($s); fi; done
      if [ ${#students[@]} -gt 0 ]; then lane_start students _lane_stages "${students[@]}"; lanes+=("${students[@]}"); fi
    fi
    if [ "${ngpu:-0}" -eq 0 ] && [ $n -eq 11 ] && _run 12; then
      lane_start segregated _lane_stages 12; lanes+=(12)
    fi
    log "Stage $n"
    stage_$n
  done
  lane_wait_all
}

# Background lanes. On CPU (ngpu 0) the trainings that do not depend on each other run side by side:
# each network trains on one thread (conf/*.yaml), so on two cores stages 9 and 13 (the supervised-only
# and oracle students, which need only stage 6) run beside stage 7 (the teacher), and stage 12 beside
# stage 11. Stages 14-16 wait for every lane. A lane's output goes to exp/log/<name>.log; a
# failed lane fails the recipe with its log's tail; a recipe that fails kills its lanes.
declare -A lane_pids=()

# lane_start NAME COMMAND...: COMMAND (a function or program) in the background.
lane_start() {
  local name=$1; shift
  mkdir -p exp/log
  log "lane '$name' started in the background: $* (log: exp/log/$name.log)"
  "$@" > exp/log/$name.log 2>&1 &
  lane_pids[$name]=$!
}

# lane_wait_all: waits for every lane; the first failure ends the recipe.
lane_wait_all() {
  local name
  for name in "${!lane_pids[@]}"; do
    if wait "${lane_pids[$name]}"; then
      log "lane '$name' finished (exp/log/$name.log)"
      unset "lane_pids[$name]"
    else
      tail -n 30 exp/log/$name.log >&2
      log "lane '$name' failed: see exp/log/$name.log"
      exit 1
    fi
  done
}

_descendants() {  # every process below $1, children before their own children
  local c
  for c in $(pgrep -P "$1" || true); do echo $c; _descendants $c; done
}

_lane_kill() {  # each lane's whole tree (a decoder's worker pool too): stopped first, so that nothing
  local pid tree  # starts its next command or escapes by being re-parented, then terminated
  for pid in "${lane_pids[@]}"; do
    tree="$pid $(_descendants $pid)"
    kill -STOP $tree 2>/dev/null || true
    kill -TERM $tree 2>/dev/null || true
    kill -CONT $tree 2>/dev/null || true
  done
}
trap _lane_kill EXIT


# The stages $1.. one after the other (a lane's body).
_lane_stages() {
  local n
  for n in "$@"; do log "Stage $n"; stage_$n; done
}

# The options of stages 7-16, with the recipe's current values, for its help_message (run.sh sources
# this file before building that message).
nnet_stage_options_help() {
  cat <<EOF
  --teacher-conf / --student-conf FILE   network training configs (default $teacher_conf / $student_conf)
  --teacher-dir DIR            the teacher's folder: trained (7), decoded (8), labelling (10)
                               (default ${teacher_dir:-exp/teacher});
                               e.g. --stage 7 --stop-stage 8 --teacher-dir exp/teacher_e24 --teacher-conf conf/tuning/t_e24.yaml
  --nnet-lm-weights W          LM weights swept on dev for the networks (default $nnet_lm_weights)
  --nnet-decode-opts "OPTS"    decoder options of the networks (default "${nnet_decode_opts:-}")
  --nnet-avg N                 decode, label and realign with the mean of each network's last N epoch
                               checkpoints, <dir>/avg.pt (icefall's --avg) instead of best.pt (default ${nnet_avg:-1})
  --topk K                     teacher posteriors kept per frame (default $topk)
  --realign-with-teacher true|false   realign train_sup and dev with the teacher (stage 7) and train a second
                               teacher (and a supervised student) on the new targets, beside the first ones
                               (default ${realign_with_teacher:-false})
  --labelled-lr-mult M         learning-rate multiplier on labelled batches (default $labelled_lr_mult)
  --supervised-lr-mult M       the supervised and oracle students' (default "${supervised_lr_mult:-}": the same,
                               so the comparison is at equal learning rates; 1.0: plain training)
  --seeds "S1 S2 ..."          train every student (stages 9, 11-14) once per seed, in exp/<system>/seed<S>
                               when several; the report gives means, deviations and a seed-aware test
                               (default "${seeds:-}": the student config's seed, exp/<system>/)
  --ssl-opts "OPTS"            more train_student options of the students on more than train_sup (stages
                               11-15), which make exactly as many updates as stage 9's (--equal-updates true;
                               "--equal-updates false --num-epochs N": N passes over all) (default "$ssl_opts")
  --sweep true|false           stage 14: interleaved students on nested subsets of train_unsup (default $sweep)
  --sweep-ratios "R1 R2"       their unlabelled/labelled hour ratios (default "$sweep_ratios")
  --sweep-seed S               seed of the subsets (default ${sweep_seed:-0})
  --sweep-order shuffle|hash   the subsets' order: one seeded shuffle of every id, or a seeded hash per id
                               (the same nesting in memory that does not grow: other cuts) (default ${sweep_order:-shuffle})
  --dist true|false            stage 15: the interleaved student under torchrun per sync mode (default $dist)
  --dist-modes "M1 M2"         sync modes, of ddp gtc bmuf ma (default "$dist_modes")
  --dist-nproc N               processes (default $dist_nproc)
  --dist-opts "OPTS"           sync options of train_student (default "$dist_opts")
  --dist-sim-workers "N1 N2"   stage 15 also: the student with N simulated workers in one process, per
                               --dist-sim-modes (default "${dist_sim_workers:-}": none)
  --dist-sim-modes "M1 M2"     their sync modes (default "${dist_sim_modes:-ddp gtc bmuf}")
  --dist-sim-decode true|false decode them (default ${dist_sim_decode:-true}; false: dev frame accuracy only)
EOF
}

has_set() { [[ " $sets " == *" $1 "* ]]; }

# The evaluation sets, dev sets first: a test set's LM weight comes from a dev set's decoding.
ordered_eval_sets() {
  local s
  for s in $eval_sets; do case $s in dev|dev_*) echo $s ;; esac; done
  for s in $eval_sets; do case $s in dev|dev_*) ;; *) echo $s ;; esac; done
}

# LM-weight options of system $1 on set $2: a sweep of $3 on a dev set, else the best weight of its dev set.
lm_weight_opts() {
  local sys=$1 set=$2 src=${dev_set:-dev}
  case $set in dev|dev_*) echo "--lm-weights $3"; return ;; esac
  if [[ $set == test_* && " $eval_sets " == *" dev_${set#test_} "* ]]; then src=dev_${set#test_}; fi
  echo "--lm-weight-from $sys/decode_$src/best_wer"
}

# senone_count <senone-dir>: the number of senones (the length of its priors).
senone_count() { python -c "import numpy, sys; print(len(numpy.load(sys.argv[1])))" $1/senone_counts.npy; }

# Networks and labelling on GPUs when ngpu > 0.
nnet_device_opts() { if [ "${ngpu:-0}" -gt 0 ]; then echo "--device cuda"; fi; }

# Train a network into $1 with module $2 and its arguments: through $train_cmd (a Slurm job with
# --gpus on a cluster), under torchrun with ngpu > 1. A finished run (best.pt done) is not relaunched:
# a relaunch would only reload it, and under torchrun would rewrite comm.json with an empty run.
nnet_train() {
  local dir=$1 mod=$2
  shift 2
  local launch=(python -m $mod) extra=($(nnet_device_opts))
  if [ -f $dir/.best.pt.done ]; then
    # make's rule on its inputs, the files among its arguments (config, cuts, tree, CMVN): one made
    # again since (stages 2-6 under --force true) means the network is stale. Folders are left out: a
    # re-run rewrites files in them (exp/pseudo's indices) without changing what they hold; so are files
    # in the network's own folder (stage 14 writes a sweep point's subset there again on each run).
    local x newer=
    for x in "$@"; do
      case $x in "$dir"/*) continue ;; esac
      if [ -f "$x" ] && [ "$x" -nt $dir/.best.pt.done ]; then newer=$x; break; fi
    done
    # and its arguments: a training given other inputs (e.g. --speed-perturb turned off: fewer --train-cuts)
    # is stale too; $dir/.train_args records them (a network trained before the record: mtimes only)
    local why=
    if [ -n "$newer" ]; then
      why="was trained before $newer was made again"
    elif [ -f $dir/.train_args ] && [ "$(cat $dir/.train_args)" != "$* ${nnet_opts:-}" ]; then
      why="was trained with other arguments ($(cat $dir/.train_args)) than now ($* ${nnet_opts:-})"
    fi
    if [ -z "$why" ]; then log "$dir is trained: skipping"; return 0; fi
    if [ "${force:-false}" != true ]; then
      log "$dir $why: re-run with --force true to retrain it"; return 1
    fi
    log "$dir: retraining from scratch (--force true): it $why; the old one is" \
        "moved to $dir.old (its checkpoints would be resumed)"
    rm -rf $dir.old
    mv $dir $dir.old
  fi
  if [ "${ngpu:-0}" -gt 1 ]; then
    launch=(torchrun ${torchrun_opts:---standalone} --nproc-per-node $ngpu -m $mod)
    extra+=(--sync ${sync:-ddp} ${sync_opts:-})
  fi
  mkdir -p $dir/log
  $train_cmd --gpus ${ngpu:-0} $dir/log/train.log "${launch[@]}" "$@" "${extra[@]}" ${nnet_opts:-}
  echo "$* ${nnet_opts:-}" > $dir/.train_args
}

# ---------------------------------------------------------------------------------------------------
# Students (stages 9, 11-15)

# A student of mode $1 (supervised|interleaved|segregated) into $4, validated on <senone-dir>/cuts_$dev_set
# with <data>/cmvn.npz: train_student_into <mode> <data> <senone-dir> <dir> [train_student options: its
# training data, e.g. --labelled-cuts FILE..., --unlabelled-cuts FILE --pseudo-dir DIR]. Every student
# makes exactly the updates of the supervised one (--equal-updates true); its labelled batches train at
# the same LR multiplier (supervised_lr_mult, default labelled_lr_mult).
train_student_into() {
  local mode=$1 data=$2 senone=$3 dir=$4
  shift 4
  local unsup=(--labelled-lr-mult ${supervised_lr_mult:-$labelled_lr_mult} --equal-updates true)
  [ $mode = supervised ] || unsup=(--labelled-lr-mult $labelled_lr_mult --equal-updates true ${ssl_opts:-})
  nnet_train $dir asrkit.bin.train_student --mode $mode --config $student_conf --tree $senone/tree \
    --dev-cuts $senone/cuts_${dev_set:-dev}.jsonl.gz --cmvn $data/cmvn.npz --num-senones $(senone_count $senone) \
    --out-dir $dir "${unsup[@]}" "$@"
}

# The students' seeds: $seeds, or "config" (the student config's seed) when none is given.
student_seeds() { echo ${seeds:-config}; }

# The dir of system $1 for seed $2: $1 itself for a single seed, $1/seed$2 for several.
seed_dir() {
  if [ $(echo ${seeds:-} | wc -w) -gt 1 ]; then echo $1/seed$2; else echo $1; fi
}

# train_student options of seed $1.
seed_opts() { [ "$1" = config ] || echo "--seed $1"; }

# train_students <mode> <data> <senone-dir> <dir> [train_student options]: a student (train_student_into)
# once per seed, into <dir> (one seed) or <dir>/seed<S> (several), each decoded streaming (nnet_decode).
train_students() {
  local mode=$1 data=$2 senone=$3 base=$4 s dir
  shift 4
  log "train_students: $mode LSTM student(s) into $base (seeds: $(student_seeds))"
  for s in $(student_seeds); do
    dir=$(seed_dir $base $s)
    train_student_into $mode $data $senone $dir "$@" $(seed_opts $s)
    nnet_decode $data $senone $dir true
  done
}

# ---------------------------------------------------------------------------------------------------
# Decoding

# gmm_decode <lang> <G.fst> <feats-dir> <dir>: the HCLG of GMM system <dir> (<dir>/graph) and the decoding
# of every evaluation set (<feats-dir>/cuts_<set>.jsonl.gz, MFCC) into <dir>/decode_<set>, through
# $decode_cmd (logs: <dir>/log/decode_<set>.log); the LM weight as lm_weight_opts says.
gmm_decode() {
  local lang=$1 lm=$2 feats=$3 dir=$4 set
  log "gmm_decode: graph of $dir, decoding of $(echo $eval_sets) (LM weights $gmm_lm_weights swept on dev sets)"
  python -m asrkit.bin.make_graph --lang $lang --lm $lm --model $dir/final.mdl --out-dir $dir/graph
  for set in $(ordered_eval_sets); do
    $decode_cmd --num-threads $nj $dir/log/decode_$set.log \
      python -m asrkit.bin.decode_gmm --model $dir/final.mdl --graph $dir/graph --cuts $feats/cuts_$set.jsonl.gz \
      $(lm_weight_opts $dir $set "$gmm_lm_weights") $gmm_decode_opts --out-dir $dir/decode_$set --nj $nj
  done
}

# nnet_model <dir>: the file of network <dir> that decoding, labelling and realignment use: best.pt (the best
# dev frame accuracy), or with nnet_avg N > 1 avg.pt, the mean of its last N epoch checkpoints (icefall's
# --avg; made here, left as it is when up to date). Call it as "model=$(nnet_model <dir>)" under set -e.
nnet_model() {
  local dir=$1
  if [ "${nnet_avg:-1}" -gt 1 ]; then
    python -m asrkit.bin.average_checkpoints --dir $dir --last $nnet_avg --out $dir/avg.pt >&2 || return 1
    echo $dir/avg.pt
  else
    echo $dir/best.pt
  fi
}

# nnet_decode <data> <senone-dir> <dir> <streaming>: network <dir>'s model (nnet_model) on every evaluation set
# (<data>/fbank/cuts_<set>.jsonl.gz, CMVN <data>/cmvn.npz, priors of <senone-dir>) decoded through
# <senone-dir>/graph and scored against <data>/<set>/text, into <dir>/decode_<set>, through $decode_cmd
# (logs: <dir>/log/{forward,decode}_<set>.log); <streaming> true: the student's chunked forward pass.
nnet_decode() {
  local data=$1 senone=$2 dir=$3 streaming=$4 set gpus=0 model
  if [ "${ngpu:-0}" -gt 0 ]; then gpus=1; fi
  model=$(nnet_model $dir)
  log "nnet_decode: $model on $(echo $eval_sets) (streaming: $streaming)"
  for set in $(ordered_eval_sets); do
    $decode_cmd --gpus $gpus $dir/log/forward_$set.log \
      python -m asrkit.bin.nnet_forward --model $model --cuts $data/fbank/cuts_$set.jsonl.gz \
      --cmvn $data/cmvn.npz --priors $senone/senone_counts.npy --streaming $streaming --chunk $stream_chunk \
      $(nnet_device_opts) --out-dir $dir/decode_$set/scores
    $decode_cmd --num-threads $nj $dir/log/decode_$set.log \
      python -m asrkit.bin.decode --graph $senone/graph --scores $dir/decode_$set/scores --ref $data/$set/text \
      $(lm_weight_opts $dir $set "$nnet_lm_weights") ${nnet_decode_opts:-} --nj $nj --out-dir $dir/decode_$set
  done
}

# need_unsup N: true when there is a train_unsup set, else a logged skip of stage N.
need_unsup() {
  has_set train_unsup && return 0
  log "Stage $1: skipped (no train_unsup set: semi-supervised stages need unlabelled data)"
  return 1
}

# has_oracle <cuts> N: true when train_unsup's true transcripts <cuts> exist, else a logged skip of stage N.
has_oracle() {
  [ -f $1 ] && return 0
  log "Stage $2: skipped (train_unsup has no transcripts: no oracle)"
  return 1
}

# ---------------------------------------------------------------------------------------------------
# Speed perturbation of the labelled training set (speed_perturb; asrkit/data/perturb.py). A copy at
# factor f is a set of its own, <set>_sp<f>: stage 2 computes its fbank and MFCC, stage 6 aligns it with
# the triphone GMM as any labelled set other than the GMM's training set (one whose alignment fails is
# left out and listed in exp/senone/left_out_<set>_sp<f>.txt), and the teacher and the supervised
# student train on train_sup and its copies. The senone tree, the priors and CMVN stay train_sup's.

# check_speed_perturb: refuses a factor of $speed_perturb that is not a number > 0, naming the option,
# before any stage runs; rewrites the factors as asrkit names the copies ("0.90" -> 0.9, 1.0 dropped).
check_speed_perturb() {
  [ -n "${speed_perturb:-}" ] || return 0
  local canon
  if ! canon=$(python -m asrkit.bin.perturb_speed --check --option-name=--speed-perturb --factors "$speed_perturb"); then
    exit 1  # the tool said why, naming --speed-perturb
  fi
  speed_perturb=$canon
}

# sp_sets <set> [sep]: the names of <set>'s speed-perturbed copies, each after <sep> (default a space):
# "sp_sets train_sup" gives " train_sup_sp0.9 train_sup_sp1.1", "sp_sets train_sup ," ",train_sup_sp0.9,...";
# nothing without $speed_perturb.
sp_sets() {
  local f
  for f in ${speed_perturb:-}; do printf '%s%s_sp%s' "${2:- }" "$1" "$f"; done
}

# sp_cuts <dir> <set>: the manifests <dir>/cuts_<set>_sp<f>.jsonl.gz of <set>'s copies (none without
# $speed_perturb), e.g. the senone targets of the copies for the networks' training data.
sp_cuts() {
  local s
  for s in $(sp_sets $2); do echo -n " $1/cuts_$s.jsonl.gz"; done
}

# perturb_speed <manifest-dir> <set> <out-dir>: <set>'s copies at each speed of $speed_perturb,
# <out-dir>/cuts_<set>_sp<f>.jsonl.gz, from <manifest-dir>/cuts_<set>.jsonl.gz; nothing without it.
perturb_speed() {
  [ -n "${speed_perturb:-}" ] || return 0
  log "perturb_speed: $2 at speeds $speed_perturb -> $3"
  python -m asrkit.bin.perturb_speed $(forced) --cuts $1/cuts_$2.jsonl.gz --set $2 --factors "$speed_perturb" \
    --out-dir $3
}

# ---------------------------------------------------------------------------------------------------
# Stage 2: features

# compute_features <manifest-dir> <kind> <dir> <set>...: fbank or mfcc of <manifest-dir>/cuts_<set>.jsonl.gz
# for each set, into <dir> (features and <dir>/cuts_<set>.jsonl.gz).
compute_features() {
  local man=$1 kind=$2 dir=$3 set
  shift 3
  log "compute_features: $kind of $* into $dir"
  local cuts=()
  for set in "$@"; do cuts+=($man/cuts_$set.jsonl.gz); done
  # one process for every set (one after the other): python and torch start once, not once per set
  python -m asrkit.bin.compute_features $(forced) --cuts "${cuts[@]}" --out-dir $dir --set "$@" --kind $kind --nj $nj
}

# compute_cmvn <cuts> <cmvn.npz>: global CMVN statistics of the features of <cuts>.
compute_cmvn() {
  log "compute_cmvn: CMVN of $1 -> $2"
  python -m asrkit.bin.compute_cmvn $(forced) --cuts $1 --out $2
}

# ---------------------------------------------------------------------------------------------------
# Stage 3: lexicon, lang dirs, LM

# prepare_lang <text> <dir>: the lexicon ($lexicon_opts; the words of <text> and of $vocab_text) in
# <dir>/local/dict, <dir>/lang (3-state HMMs) and <dir>/lang_senone (1-state).
prepare_lang() {
  log "prepare_lang: lexicon ($lexicon_opts), $2/lang, $2/lang_senone"
  python -m asrkit.bin.prepare_lang $(forced) $lexicon_opts --text $1 ${vocab_text:+--plain-text $vocab_text} \
    --out-dir $2
}

# train_lm <text> <words.txt> <dev-text> <dir>: a $lm_order-gram LM of <text> (and $lm_text), pruned at
# $lm_prune, its perplexity on <dev-text>, G.fst over <words.txt>, in <dir>.
train_lm() {
  log "train_lm: $lm_order-gram LM of $1${lm_text:+ (+ $lm_text)} -> $4"
  python -m asrkit.bin.train_lm $(forced) --text $1 ${lm_text:+--plain-text $lm_text} --order $lm_order \
    --prune-threshold ${lm_prune:-0} --words $2 --dev-text $3 --out-dir $4
}

# ---------------------------------------------------------------------------------------------------
# Stages 4-5: GMM-HMMs at 10 ms

# train_mono <cuts> <lang> <dir>: a monophone GMM-HMM ($mono_gauss Gaussians) of the MFCC cuts, and its
# alignments of them (<dir>/ali.pt).
train_mono() {
  log "train_mono: monophone GMM-HMM of $1 ($mono_gauss Gaussians) -> $3"
  python -m asrkit.bin.train_gmm $(forced) --type mono --cuts $1 --lang $2 \
    --out-dir $3 --num-gauss $mono_gauss --nj $nj
}

# train_tri <cuts> <lang> <ali-dir> <dir>: a triphone GMM-HMM ($tri_leaves leaves, $tri_gauss Gaussians)
# from the alignments of <ali-dir>, and its own alignments (<dir>/ali.pt: the input of stage 6).
train_tri() {
  log "train_tri: triphone GMM-HMM of $1 from $3's alignments ($tri_leaves leaves, $tri_gauss Gaussians) -> $4"
  python -m asrkit.bin.train_gmm $(forced) --type tri --cuts $1 --lang $2 \
    --ali-dir $3 --out-dir $4 --num-leaves $tri_leaves --num-gauss $tri_gauss --nj $nj
}

# gmm_align <cuts> <lang> <dir> <ali-dir>: GMM system <dir>'s alignment of <cuts> in <ali-dir>/ali.pt; where
# the corpus records the true segmentation (egs/synth), the share of phone boundaries within 20/50 ms of
# it in <ali-dir>/boundaries.json.
gmm_align() {
  log "gmm_align: $3's alignment of $1 -> $4"
  python -m asrkit.bin.align_gmm --model $3/final.mdl --cuts $1 --lang $2 --out $4/ali.pt --nj $nj
}

# ---------------------------------------------------------------------------------------------------
# Stage 6: senones

# make_senones <data> <lang> <lang-senone> <G.fst> <ali-dir> <dir> <sets> [make_senones options]: the 30 ms
# senone tree ($num_senones leaves at most) from <ali-dir>'s alignments, per-frame targets of the sets
# (comma-separated; <data>'s MFCC to align those other than train_sup, its fbank cuts carrying the
# targets), priors and the senone HCLG (<lang-senone>, <G.fst>), in <dir>.
make_senones() {
  local data=$1 lang=$2 lang_senone=$3 lm=$4 ali=$5 dir=$6 sets=$7
  shift 7
  log "make_senones: senone tree at 30 ms ($num_senones leaves at most) from $ali, targets of $sets, priors, HCLG -> $dir"
  python -m asrkit.bin.make_senones $(forced) --ali-dir $ali --lang $lang_senone --lang-gmm $lang \
    --mfcc-dir $data/mfcc --fbank-dir $data/fbank --cmvn $data/cmvn.npz --sets $sets \
    --num-leaves $num_senones --tree-thresh $senone_tree_thresh --tree-min-count 30 \
    --G $lm --out-dir $dir --nj $nj "$@"
}

# check_senone_targets <dir> <set>: prints the senones' occupancy; fails when no utterance of <set> (the
# networks' validation set) has targets.
check_senone_targets() {
  cat $1/occupancy.txt
  local kept
  kept=$(python -c "import gzip, sys; print(sum(1 for _ in gzip.open(sys.argv[1], 'rt')))" $1/cuts_$2.jsonl.gz)
  if [ "$kept" -eq 0 ]; then  # the networks' validation would have nothing to score
    log "Stage 6: no $2 utterance has senone targets (words missing from the lexicon or failed" \
        "alignments; see the warnings above): give a lexicon or vocabulary that covers $2"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------------
# Stages 7, 10: the teacher and its pseudo-labels

# train_teacher <data> <senone-dir> <dir> [cuts...]: the BLSTM teacher on <senone-dir>/cuts_train_sup.jsonl.gz's
# targets and those of the further cuts manifests given (train_sup's speed-perturbed copies: sp_cuts).
train_teacher() {
  local data=$1 senone=$2 dir=$3
  shift 3
  log "train_teacher: BLSTM teacher on train_sup$([ $# -eq 0 ] || echo " and $*") ($(senone_count $senone) senones) -> $dir"
  nnet_train $dir asrkit.bin.train_nnet --config $teacher_conf --train-cuts $senone/cuts_train_sup.jsonl.gz "$@" \
    --dev-cuts $senone/cuts_${dev_set:-dev}.jsonl.gz --cmvn $data/cmvn.npz --num-senones $(senone_count $senone) \
    --out-dir $dir
}

# realign_with_network <data> <lang-senone> <senone-dir> <network-dir> <dir>: <network-dir>'s (nnet_model) forced
# alignment of train_sup and $dev_set (the targets of <senone-dir>, with their transcripts) through the senone
# training graphs of <lang-senone>, its log-posteriors minus <senone-dir>'s log-priors as likelihoods (Kaldi's
# nnet realignment): new targets and priors in <dir>, a senone dir as make_senones writes (its graph a link to
# <senone-dir>'s); cuts whose alignment fails are left out, listed in <dir>/left_out_<set>.txt. A network trained
# again since makes it again.
realign_with_network() {
  local data=$1 lang=$2 senone=$3 net=$4 dir=$5 model
  model=$(nnet_model $net)
  log "realign_with_network: $model realigns train_sup and ${dev_set:-dev} ($senone's targets) -> $dir"
  mkdir -p $dir/log
  $train_cmd --gpus $([ "${ngpu:-0}" -gt 0 ] && echo 1 || echo 0) $dir/log/realign.log \
    python -m asrkit.bin.realign_nnet --model $model --senone-dir $senone --lang $lang --cmvn $data/cmvn.npz \
    --sets train_sup,${dev_set:-dev} --out-dir $dir $(nnet_device_opts)
}

# pseudo_label <data> <teacher-dir> <senone-dir> <dir>: the teacher's top $topk posteriors per frame of
# <data>/fbank/cuts_train_unsup.jsonl.gz, in shards and an index, in <dir>.
pseudo_label() {
  local data=$1 teacher=$2 senone=$3 dir=$4 model
  model=$(nnet_model $teacher)
  local common=(--model $model --cuts $data/fbank/cuts_train_unsup.jsonl.gz --cmvn $data/cmvn.npz
                --tree $senone/tree --out-dir $dir --k $topk --shard-size ${pseudo_shard_size:-500} --no-progress)
  if [ "${ngpu:-0}" -gt 0 ]; then
    log "pseudo_label: $teacher labels train_unsup (top $topk posteriors per frame) on $ngpu GPU(s) -> $dir"
    $train_cmd --gpus $ngpu $dir/log/label.log \
      torchrun ${torchrun_opts:---standalone} --nproc-per-node $ngpu -m asrkit.bin.pseudo_label "${common[@]}" --device cuda
  else
    log "pseudo_label: $teacher labels train_unsup (top $topk posteriors per frame) in $nj CPU jobs -> $dir"
    $train_cmd JOB=1:$nj $dir/log/label.JOB.log \
      python -m asrkit.bin.pseudo_label "${common[@]}" --job JOB --nj $nj --num-threads 1
  fi
  python -m asrkit.bin.pseudo_label --out-dir $dir --merge-index
}

# ---------------------------------------------------------------------------------------------------
# Stages 14-16

# sweep_students <data> <senone-dir> <pseudo-dir> <dir>: interleaved students on nested subsets of
# <data>/fbank/cuts_train_unsup.jsonl.gz holding $sweep_ratios x the labelled hours, in <dir>/x<R>.
sweep_students() {
  local data=$1 senone=$2 pseudo=$3 base=$4 r dir
  log "sweep_students: interleaved students on nested subsets of train_unsup (${sweep_ratios:-1 2} x the labelled hours)"
  # Each point makes exactly as many updates as the supervised student (--equal-updates, as stages 11-13),
  # so that the sweep varies the data and not the length of training; one subset for every seed.
  for r in ${sweep_ratios:-1 2}; do
    dir=$base/x$r
    python -m asrkit.bin.subset_cuts --cuts $data/fbank/cuts_train_unsup.jsonl.gz \
      --ratio-of $senone/cuts_train_sup.jsonl.gz --ratio $r --seed ${sweep_seed:-0} --order ${sweep_order:-shuffle} \
      --out $dir/cuts_unsup.jsonl.gz --summary $dir/sweep.json
    # the whole set's cuts first, then the subset (argparse: the last one trains): a network is stale when
    # the features it came from are made again (nnet_train), and the subset, rewritten on each run, is not
    # one of them
    train_students interleaved $data $senone $dir --unlabelled-cuts $data/fbank/cuts_train_unsup.jsonl.gz \
      --pseudo-dir $pseudo --labelled-cuts $senone/cuts_train_sup.jsonl.gz --unlabelled-cuts $dir/cuts_unsup.jsonl.gz
  done
}

# dist_students <data> <senone-dir> <pseudo-dir> <exp-dir>: the interleaved student under torchrun per sync
# mode of $dist_modes (<exp-dir>/dist_<mode>), and with N simulated workers in one process per
# $dist_sim_workers x $dist_sim_modes (<exp-dir>/dist_sim_<mode>_n<N>), each decoded.
dist_students() {
  local data=$1 senone=$2 pseudo=$3 exp=$4 mode dir nproc=${dist_nproc:-2} dev=() nsim
  if [ "${ngpu:-0}" -gt 0 ]; then nproc=$ngpu; dev=(--device cuda); fi  # else gloo on CPU processes
  log "dist_students: the interleaved student under torchrun ($nproc processes) per sync mode: ${dist_modes:-ddp gtc bmuf}"
  local common=(--mode interleaved --config $student_conf --tree $senone/tree
                --labelled-cuts $senone/cuts_train_sup.jsonl.gz --unlabelled-cuts $data/fbank/cuts_train_unsup.jsonl.gz
                --pseudo-dir $pseudo --labelled-lr-mult $labelled_lr_mult --dev-cuts $senone/cuts_${dev_set:-dev}.jsonl.gz
                --cmvn $data/cmvn.npz --num-senones $(senone_count $senone))
  for mode in ${dist_modes:-ddp gtc bmuf}; do
    dir=$exp/dist_$mode
    if [ -f $dir/.best.pt.done ]; then
      log "$dir is trained: skipping"  # a relaunch would rewrite comm.json with an empty run's wall time
    else
      mkdir -p $dir/log
      $train_cmd --gpus ${ngpu:-0} $dir/log/train.log torchrun ${torchrun_opts:---standalone} --nproc-per-node $nproc \
        -m asrkit.bin.train_student "${common[@]}" --sync $mode ${dist_opts:-} "${dev[@]}" --out-dir $dir \
        --equal-updates true ${nnet_opts:-} ${ssl_opts:-}
    fi
    nnet_decode $data $senone $dir true
  done
  # the same student with N simulated workers in one process (asrkit.distributed.simulate): the same epochs over
  # the same cuts, each worker with the one-process batch size, so N workers make 1/N of the updates
  for nsim in ${dist_sim_workers:-}; do
    for mode in ${dist_sim_modes:-ddp gtc bmuf}; do
      dir=$exp/dist_sim_${mode}_n$nsim
      if [ -f $dir/.best.pt.done ]; then
        log "$dir is trained: skipping"
      else
        mkdir -p $dir/log
        log "dist_students: $mode with $nsim simulated workers -> $dir"
        $train_cmd $dir/log/train.log python -m asrkit.bin.train_student "${common[@]}" --sync $mode \
          --simulate-workers $nsim ${dist_opts:-} --out-dir $dir --equal-updates true ${nnet_opts:-} ${ssl_opts:-}
      fi
      if ${dist_sim_decode:-true}; then nnet_decode $data $senone $dir true; fi
    done
  done
}

# make_report <exp-dir> <data> <out>: the report of every system decoded on $eval_sets (<out>, plots beside it).
make_report() {
  log "make_report: $3 from $1"
  python -m asrkit.bin.report --exp $1 --data $2 --sets "$eval_sets" --out $3 --title "${report_title:-Results}"
  cat $3
}
