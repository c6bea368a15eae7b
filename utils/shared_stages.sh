# utils/shared_stages.sh: stages 2-16 (design.md's numbers) as functions stage_2 ... stage_16 driven by
# the recipe's variables, so that a recipe is its options, its corpus stages (0-1) and
#
#   . utils/shared_stages.sh
#   shared_stages 2 16        # runs stage_N for each N in $stage..$stop_stage within 2..16
#
# A recipe replaces one stage by defining its own stage_N after sourcing this file (stage 3's work is
# also lang_stage, for a recipe that prepares more input first). Sourced after
# parse_options.sh and utils/log.sh by every recipe (egs/synth and egs/speechocean762 run stages 7-16
# from here; their stages 0-6 are their own, with utils/stages.sh).
#
# Variables read (defaults in brackets):
#   sets            every set: train_sup, train_unsup (optional: stages 10-15 need it), evaluation sets
#   eval_sets       the sets decoded and reported; dev_set [dev] validates the networks and picks the LM
#                   weight of a test set; test_X takes it from dev_X when dev_X is an evaluation set
#   nj              parallel jobs (CPU); ngpu [0]: networks on N GPUs (1: one process; N>1: torchrun,
#                   NCCL, --sync $sync [ddp] with $sync_opts; torchrun_opts [--standalone] for several nodes)
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
#   [""], stream_chunk, topk, pseudo_shard_size [500]
#   labelled_lr_mult: LR multiplier on labelled batches, of every student; supervised_lr_mult [""]: the
#   supervised and oracle students' ("": labelled_lr_mult, the controlled comparison; 1.0: plain
#   training, as before)
#   seeds [""]: the students' training seeds (stages 9, 11-14; the teacher and its pseudo-labels once):
#   "" or one seed: exp/<system>/ as always; several ("1 2 3"): exp/<system>/seed<S>/ each, the report
#   giving means, standard deviations and a test over seeds and utterances
#   sweep [false], sweep_ratios ["1 2"]; dist [false], dist_modes ["ddp gtc bmuf"], dist_nproc [2], dist_opts
#   dist_sim_workers [""] (e.g. "1 4 16 64": stage 15 also trains with N simulated workers), dist_sim_modes
#   ["ddp gtc bmuf"], dist_sim_decode [true]
#   report_title
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
    if [ "${ngpu:-0}" -eq 0 ] && [ $n -eq 7 ]; then  # CPU: lanes (see above)
      local s students=()
      for s in 9 13; do if _run $s; then students+=($s); fi; done
      if [ ${#students[@]} -gt 0 ]; then lane_start students _lane_stages "${students[@]}"; lanes+=("${students[@]}"); fi
    fi
    if [ "${ngpu:-0}" -eq 0 ] && [ $n -eq 11 ] && _run 12; then
      lane_start segregated _lane_stages 12; lanes+=(12)
    fi
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
  for n in "$@"; do stage_$n; done
}

# The options of stages 7-16, with the recipe's current values, for its help_message (run.sh sources
# this file before building that message).
nnet_stage_options_help() {
  cat <<EOF
  --teacher-conf / --student-conf FILE   network training configs (default $teacher_conf / $student_conf)
  --nnet-lm-weights W          LM weights swept on dev for the networks (default $nnet_lm_weights)
  --nnet-decode-opts "OPTS"    decoder options of the networks (default "${nnet_decode_opts:-}")
  --topk K                     teacher posteriors kept per frame (default $topk)
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
  --sweep-seed S               seed of the subsets (default $sweep_seed)
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

senone_count() { python -c "import numpy; print(len(numpy.load('exp/senone/senone_counts.npy')))"; }

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
    if [ -z "$newer" ]; then log "$dir is trained: skipping"; return 0; fi
    if [ "${force:-false}" != true ]; then
      log "$dir was trained before $newer was made again: re-run with --force true to retrain it"; return 1
    fi
    log "$dir: retraining from scratch (--force true): $newer is newer than its training; the old one is" \
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
}

# A student of mode $1 (supervised|interleaved|segregated) into $2; more train_student arguments after.
# Every student makes exactly the updates of the supervised one (--equal-updates true); its labelled
# batches train at the same LR multiplier (supervised_lr_mult, default labelled_lr_mult).
train_student_into() {
  local mode=$1 dir=$2
  shift 2
  local unsup=(--labelled-lr-mult ${supervised_lr_mult:-$labelled_lr_mult} --equal-updates true)
  [ $mode = supervised ] || unsup=(--unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz --pseudo-dir exp/pseudo
                                   --labelled-lr-mult $labelled_lr_mult --equal-updates true ${ssl_opts:-})
  nnet_train $dir asrkit.bin.train_student --mode $mode --config $student_conf --tree exp/senone/tree \
    --dev-cuts exp/senone/cuts_${dev_set:-dev}.jsonl.gz --cmvn data/cmvn.npz --num-senones $(senone_count) \
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

# Train (train_student_into's arguments, the dir second) and decode a student once per seed.
student_per_seed() {
  local mode=$1 base=$2 s dir
  shift 2
  for s in $(student_seeds); do
    dir=$(seed_dir $base $s)
    train_student_into $mode $dir "$@" $(seed_opts $s)
    shared_nnet_decode $dir true
  done
}

# HCLG of GMM system $1 and decoding of every evaluation set.
shared_gmm_decode() {
  local sys=$1 set
  python -m asrkit.bin.make_graph --lang data/lang --lm data/lm/G.fst --model $sys/final.mdl --out $sys/graph
  for set in $(ordered_eval_sets); do
    python -m asrkit.bin.decode_gmm --model $sys/final.mdl --graph $sys/graph --cuts data/mfcc/cuts_$set.jsonl.gz \
      $(lm_weight_opts $sys $set "$gmm_lm_weights") $gmm_decode_opts --out $sys/decode_$set --nj $nj
  done
}

# Network $1's scores on every evaluation set decoded through the senone HCLG; $2=true: streaming.
shared_nnet_decode() {
  local sys=$1 streaming=$2 set
  for set in $(ordered_eval_sets); do
    python -m asrkit.bin.nnet_forward --model $sys/best.pt --cuts data/fbank/cuts_$set.jsonl.gz \
      --cmvn data/cmvn.npz --priors exp/senone/senone_counts.npy --streaming $streaming --chunk $stream_chunk \
      $(nnet_device_opts) --out $sys/decode_$set/scores
    python -m asrkit.bin.decode --graph exp/senone/graph --scores $sys/decode_$set/scores --ref data/$set/text \
      $(lm_weight_opts $sys $set "$nnet_lm_weights") ${nnet_decode_opts:-} --nj $nj --out $sys/decode_$set
  done
}

need_unsup() {
  has_set train_unsup && return 0
  log "Stage $1: skipped (no train_unsup set: semi-supervised stages need unlabelled data)"
  return 1
}

stage_2() {
  log "Stage 2: fbank for every set, MFCC for every set (train_unsup's only for the oracle), CMVN from train_sup"
  local set kind
  for kind in fbank mfcc; do
    for set in $sets; do
      python -m asrkit.bin.compute_features $(forced --overwrite) --cuts data/manifests/cuts_$set.jsonl.gz \
        --out-dir data/$kind --set $set --kind $kind --num-jobs $nj
    done
  done
  python -m asrkit.bin.compute_cmvn $(forced --overwrite) --cuts data/fbank/cuts_train_sup.jsonl.gz --out data/cmvn.npz
}

# Stage 3's work, callable from a recipe's own stage_3 that prepares its inputs first.
lang_stage() {
  log "Stage 3: lexicon ($lexicon_opts), data/lang, data/lang_senone, $lm_order-gram LM${lm_text:+ (+ $lm_text)}"
  python -m asrkit.bin.prepare_lang $(forced) $lexicon_opts --text data/train_sup/text ${vocab_text:+--plain-text $vocab_text} \
    --out-dir data
  python -m asrkit.bin.train_lm $(forced) --text data/train_sup/text ${lm_text:+--plain-text $lm_text} --order $lm_order \
    --prune-threshold ${lm_prune:-0} --words data/lang/words.txt --dev-text data/${dev_set:-dev}/text --out-dir data/lm
}

stage_3() { lang_stage; }

stage_4() {
  log "Stage 4: monophone GMM-HMM at 10 ms, decoding"
  python -m asrkit.bin.train_gmm $(forced) --type mono --cuts data/mfcc/cuts_train_sup.jsonl.gz --lang data/lang \
    --out-dir exp/mono --num-gauss $mono_gauss --nj $nj
  shared_gmm_decode exp/mono
}

stage_5() {
  log "Stage 5: triphone GMM-HMM ($tri_leaves leaves, $tri_gauss Gaussians), decoding, final alignments"
  python -m asrkit.bin.train_gmm $(forced) --type tri --cuts data/mfcc/cuts_train_sup.jsonl.gz --lang data/lang \
    --ali-dir exp/mono --out-dir exp/tri --num-leaves $tri_leaves --num-gauss $tri_gauss --nj $nj
  shared_gmm_decode exp/tri
}

# make_senones for train_sup, the dev set and, for the oracle (stage 13), more sets ($1, optional).
make_senones_for() {
  python -m asrkit.bin.make_senones $(forced) --ali-dir exp/tri --lang data/lang_senone --lang-gmm data/lang \
    --mfcc-dir data/mfcc --fbank-dir data/fbank --cmvn data/cmvn.npz --sets train_sup,${dev_set:-dev}${1:-} \
    --num-leaves $num_senones --tree-thresh $senone_tree_thresh --tree-min-count 30 \
    --G data/lm/G.fst --out-dir exp/senone --nj $nj "${@:2}"
}

stage_6() {
  log "Stage 6: senone tree at 30 ms ($num_senones leaves at most), per-frame targets, priors, senone HCLG"
  make_senones_for
  cat exp/senone/occupancy.txt
  local kept
  kept=$(python -c "import gzip, sys; print(sum(1 for _ in gzip.open(sys.argv[1], 'rt')))" exp/senone/cuts_${dev_set:-dev}.jsonl.gz)
  if [ "$kept" -eq 0 ]; then  # the networks' validation would have nothing to score
    log "Stage 6: no ${dev_set:-dev} utterance has senone targets (words missing from the lexicon or failed" \
        "alignments; see the warnings above): give a lexicon or vocabulary that covers ${dev_set:-dev}"
    return 1
  fi
}

stage_7() {
  log "Stage 7: BLSTM teacher on train_sup ($(senone_count) senones)"
  nnet_train exp/teacher asrkit.bin.train_nnet --config $teacher_conf --train-cuts exp/senone/cuts_train_sup.jsonl.gz \
    --dev-cuts exp/senone/cuts_${dev_set:-dev}.jsonl.gz --cmvn data/cmvn.npz --num-senones $(senone_count) \
    --out-dir exp/teacher
}

stage_8() {
  log "Stage 8: teacher decoding"
  shared_nnet_decode exp/teacher false
}

stage_9() {
  log "Stage 9: supervised-only LSTM student on train_sup, streaming decoding (seeds: $(student_seeds))"
  student_per_seed supervised exp/student_sup --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz
}

stage_10() {
  need_unsup 10 || return 0
  local common=(--model exp/teacher/best.pt --cuts data/fbank/cuts_train_unsup.jsonl.gz --cmvn data/cmvn.npz
                --tree exp/senone/tree --out-dir exp/pseudo --k $topk --shard-size ${pseudo_shard_size:-500} --no-progress)
  if [ "${ngpu:-0}" -gt 0 ]; then
    log "Stage 10: the teacher labels train_unsup (top $topk posteriors per frame) on $ngpu GPU(s)"
    $train_cmd --gpus $ngpu exp/pseudo/log/label.log \
      torchrun ${torchrun_opts:---standalone} --nproc-per-node $ngpu -m asrkit.bin.pseudo_label "${common[@]}" --device cuda
  else
    log "Stage 10: the teacher labels train_unsup (top $topk posteriors per frame) in $nj CPU jobs"
    $train_cmd JOB=1:$nj exp/pseudo/log/label.JOB.log \
      python -m asrkit.bin.pseudo_label "${common[@]}" --job JOB --num-jobs $nj --num-threads 1
  fi
  python -m asrkit.bin.pseudo_label --out-dir exp/pseudo --merge-index
}

stage_11() {
  need_unsup 11 || return 0
  log "Stage 11: semi-supervised student, labelled and machine-labelled batches interleaved (seeds: $(student_seeds))"
  student_per_seed interleaved exp/student_ssl_inter --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz
}

stage_12() {
  need_unsup 12 || return 0
  log "Stage 12: semi-supervised student, segregated (over the whole run: every machine-labelled batch, then" \
      "every labelled one; seeds: $(student_seeds))"
  student_per_seed segregated exp/student_ssl_seg --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz
}

stage_13() {
  need_unsup 13 || return 0
  if [ ! -f data/manifests/oracle/cuts_train_unsup.jsonl.gz ]; then
    log "Stage 13: skipped (train_unsup has no transcripts: no oracle)"; return 0
  fi
  log "Stage 13: oracle student on train_sup + train_unsup with its true transcripts (the only reader of them)"
  make_senones_for ,train_unsup_oracle \
    --text-from train_unsup_oracle=train_unsup:data/manifests/oracle/cuts_train_unsup.jsonl.gz
  student_per_seed supervised exp/student_oracle \
    --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz exp/senone/cuts_train_unsup_oracle.jsonl.gz ${ssl_opts:-}
}

stage_14() {
  ${sweep:-false} || return 0
  need_unsup 14 || return 0
  log "Stage 14: interleaved students on nested subsets of train_unsup (${sweep_ratios:-1 2} x the labelled hours)"
  # Each point makes exactly as many updates as the supervised student (--equal-updates, as stages 11-13),
  # so that the sweep varies the data and not the length of training; one subset for every seed.
  local r dir
  for r in ${sweep_ratios:-1 2}; do
    dir=exp/sweep/x$r
    python -m asrkit.bin.subset_cuts --cuts data/fbank/cuts_train_unsup.jsonl.gz \
      --ratio-of exp/senone/cuts_train_sup.jsonl.gz --ratio $r --seed ${sweep_seed:-0} \
      --out $dir/cuts_unsup.jsonl.gz --summary $dir/sweep.json
    student_per_seed interleaved $dir --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz \
      --unlabelled-cuts $dir/cuts_unsup.jsonl.gz
  done
}

stage_15() {
  ${dist:-false} || return 0
  need_unsup 15 || return 0
  local mode dir nproc=${dist_nproc:-2} dev=()
  if [ "${ngpu:-0}" -gt 0 ]; then nproc=$ngpu; dev=(--device cuda); fi  # else gloo on CPU processes
  log "Stage 15: the interleaved student under torchrun ($nproc processes) per sync mode: ${dist_modes:-ddp gtc bmuf}"
  for mode in ${dist_modes:-ddp gtc bmuf}; do
    dir=exp/dist_$mode
    if [ -f $dir/.best.pt.done ]; then
      log "$dir is trained: skipping"  # a relaunch would rewrite comm.json with an empty run's wall time
    else
      mkdir -p $dir/log
      $train_cmd --gpus ${ngpu:-0} $dir/log/train.log torchrun ${torchrun_opts:---standalone} --nproc-per-node $nproc \
        -m asrkit.bin.train_student --mode interleaved --config $student_conf --tree exp/senone/tree \
        --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz --unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz \
        --pseudo-dir exp/pseudo --labelled-lr-mult $labelled_lr_mult --dev-cuts exp/senone/cuts_${dev_set:-dev}.jsonl.gz \
        --cmvn data/cmvn.npz --num-senones $(senone_count) --sync $mode ${dist_opts:-} "${dev[@]}" --out-dir $dir \
        --equal-updates true ${nnet_opts:-} ${ssl_opts:-}
    fi
    shared_nnet_decode $dir true
  done
  # the same student with N simulated workers in one process (asrkit.distributed.simulate): the same epochs over
  # the same cuts, each worker with the one-process batch size, so N workers make 1/N of the updates
  for nsim in ${dist_sim_workers:-}; do
    for mode in ${dist_sim_modes:-ddp gtc bmuf}; do
      dir=exp/dist_sim_${mode}_n$nsim
      if [ -f $dir/.best.pt.done ]; then
        log "$dir is trained: skipping"
      else
        mkdir -p $dir/log
        log "Stage 15: $mode with $nsim simulated workers -> $dir"
        $train_cmd $dir/log/train.log python -m asrkit.bin.train_student --mode interleaved --config $student_conf \
          --tree exp/senone/tree --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz \
          --unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz --pseudo-dir exp/pseudo \
          --labelled-lr-mult $labelled_lr_mult --dev-cuts exp/senone/cuts_${dev_set:-dev}.jsonl.gz \
          --cmvn data/cmvn.npz --num-senones $(senone_count) --sync $mode --simulate-workers $nsim ${dist_opts:-} \
          --out-dir $dir --equal-updates true ${nnet_opts:-} ${ssl_opts:-}
      fi
      ${dist_sim_decode:-true} && shared_nnet_decode $dir true
    done
  done
}

stage_16() {
  log "Stage 16: report"
  python -m asrkit.bin.report --exp exp --data data --sets "$eval_sets" --out RESULTS.md --title "${report_title:-Results}"
  cat RESULTS.md
}
