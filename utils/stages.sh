# Stage functions shared by the recipes (sourced by egs/*/s5/run.sh after parse_options.sh).
# They read the recipe's variables: nj, eval_sets, gmm_lm_weights, gmm_decode_opts, nnet_lm_weights,
# stream_chunk, student_conf, labelled_lr_mult; optional: nnet_decode_opts, nnet_opts (TrainConfig overrides of every
# network), ssl_opts (of the students trained on labelled + unlabelled data, e.g. fewer epochs: each
# of their epochs passes over both), sweep_seed, dist_nproc, dist_opts; and its layout: data/,
# exp/senone/, exp/pseudo/.

# HCLG of a GMM system and decoding of every evaluation set: the LM weight is swept on dev and the
# best one used for the test sets. $2 (optional): the alignment of train_sup is written to
# $1/ali_eval with, where the corpus records the true segmentation (synth), the share of phone
# boundaries within 20/50 ms of it (ali_eval/boundaries.json).
gmm_graph_and_decode() {
  local sys=$1 set weights
  python -m asrkit.bin.make_graph --lang data/lang --lm data/lm/G.fst --model $sys/final.mdl --out $sys/graph
  for set in $eval_sets; do
    if [ $set = dev ]; then weights=(--lm-weights $gmm_lm_weights); else weights=(--lm-weight-from $sys/decode_dev/best_wer); fi
    python -m asrkit.bin.decode_gmm --model $sys/final.mdl --graph $sys/graph --cuts data/mfcc/cuts_$set.jsonl.gz \
      "${weights[@]}" $gmm_decode_opts --out $sys/decode_$set --nj $nj
  done
  if [ "${2:-}" = align ]; then
    python -m asrkit.bin.align_gmm --model $sys/final.mdl --cuts data/mfcc/cuts_train_sup.jsonl.gz \
      --lang data/lang --out $sys/ali_eval/ali.pt --nj $nj
  fi
}

# The number of senones of exp/senone (its prior counts).
num_senones() { python -c "import numpy; print(len(numpy.load('exp/senone/senone_counts.npy')))"; }

# Scores of a network for every evaluation set, decoded through the senone HCLG: the LM weight is
# swept on dev and the best one used for the test sets. $2=true: streaming (chunked) forward.
nnet_decode() {
  local sys=$1 streaming=$2 set weights
  for set in $eval_sets; do
    python -m asrkit.bin.nnet_forward --model $sys/best.pt --cuts data/fbank/cuts_$set.jsonl.gz \
      --cmvn data/cmvn.npz --priors exp/senone/senone_counts.npy --streaming $streaming --chunk $stream_chunk \
      --out $sys/decode_$set/scores
    if [ $set = dev ]; then weights=(--lm-weights $nnet_lm_weights); else weights=(--lm-weight-from $sys/decode_dev/best_wer); fi
    python -m asrkit.bin.decode --graph exp/senone/graph --scores $sys/decode_$set/scores --ref data/$set/text \
      "${weights[@]}" ${nnet_decode_opts:-} --nj $nj --out $sys/decode_$set
  done
}

# A semi-supervised student and its streaming decoding. $1: interleaved|segregated, $2: output dir.
ssl_student() {
  python -m asrkit.bin.train_student --mode $1 --config $student_conf \
    --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz --unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz \
    --pseudo-dir exp/pseudo --tree exp/senone/tree --labelled-lr-mult $labelled_lr_mult \
    --dev-cuts exp/senone/cuts_dev.jsonl.gz --cmvn data/cmvn.npz --num-senones $(num_senones) --out-dir $2 ${nnet_opts:-} ${ssl_opts:-}
  nnet_decode $2 true
}

# Stage 14: the interleaved student on nested random subsets of train_unsup holding $1 (e.g. "1 2")
# times the labelled hours each, into exp/sweep/x<R>, each decoded; the full set is stage
# 11's exp/student_ssl_inter. One seed ($sweep_seed, default 0) shuffles the cuts once and each point
# takes a prefix, so x1 is inside x2. <dir>/sweep.json records what the subset holds (the report reads it).
ssl_sweep() {
  local r dir
  for r in $1; do
    dir=exp/sweep/x$r
    python -m asrkit.bin.subset_cuts --cuts data/fbank/cuts_train_unsup.jsonl.gz \
      --ratio-of exp/senone/cuts_train_sup.jsonl.gz --ratio $r --seed ${sweep_seed:-0} \
      --out $dir/cuts_unsup.jsonl.gz --summary $dir/sweep.json
    python -m asrkit.bin.train_student --mode interleaved --config $student_conf \
      --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz --unlabelled-cuts $dir/cuts_unsup.jsonl.gz \
      --pseudo-dir exp/pseudo --tree exp/senone/tree --labelled-lr-mult $labelled_lr_mult \
      --dev-cuts exp/senone/cuts_dev.jsonl.gz --cmvn data/cmvn.npz --num-senones $(num_senones) \
      --out-dir $dir ${nnet_opts:-} ${ssl_opts:-}
    nnet_decode $dir true
  done
}

# Stage 15: the interleaved student (stage 11's data and settings) trained by ${dist_nproc:-2} processes
# under torchrun (gloo on CPU) with sync mode $1 (ddp|gtc|bmuf|ma) and the sync options $dist_opts, into
# exp/dist_$1, decoded. Rank 0 writes <dir>/comm.json: bytes sent per worker, compression
# against dense all-reduce, training wall time. A finished run is not relaunched (it would only pay
# torchrun's start-up; the trainer keeps the trained run's comm.json either way).
dist_student() {
  local dir=exp/dist_$1
  if [ ! -f $dir/.best.pt.done ]; then
    torchrun --standalone --nproc-per-node ${dist_nproc:-2} -m asrkit.bin.train_student --mode interleaved \
      --config $student_conf --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz \
      --unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz --pseudo-dir exp/pseudo --tree exp/senone/tree \
      --labelled-lr-mult $labelled_lr_mult --dev-cuts exp/senone/cuts_dev.jsonl.gz --cmvn data/cmvn.npz \
      --num-senones $(num_senones) --sync $1 ${dist_opts:-} --out-dir $dir ${nnet_opts:-} ${ssl_opts:-}
  fi
  nnet_decode $dir true
}

# ---------------------------------------------------------------------------- background lanes
# Trainings that do not depend on each other run side by side: each network trains on one thread
# (conf/*.yaml), so on two cores the supervised-only and oracle students train beside the teacher, and
# the segregated student beside the interleaved one. A lane's output goes to exp/log/<name>.log; a
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

_lane_kill() {
  local pid
  for pid in "${lane_pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
}
trap _lane_kill EXIT

# ---------------------------------------------------------------------------- stages 7-16
# Reads, besides the variables above: teacher_conf, topk, train_cmd, num_senones, senone_tree_thresh,
# sweep, sweep_ratios, dist, dist_modes, report_title, stage, stop_stage.
in_range() { [ $stage -le $1 ] && [ $stop_stage -ge $1 ]; }

stage_7() {
  log "Stage 7: BLSTM teacher on train_sup ($(num_senones) senones)"
  python -m asrkit.bin.train_nnet --config $teacher_conf --train-cuts exp/senone/cuts_train_sup.jsonl.gz \
    --dev-cuts exp/senone/cuts_dev.jsonl.gz --cmvn data/cmvn.npz --num-senones $(num_senones) --out-dir exp/teacher \
    ${nnet_opts:-}
}

stage_8() {
  log "Stage 8: teacher decoding"
  nnet_decode exp/teacher false
}

stage_9() {
  log "Stage 9: supervised-only LSTM student on train_sup, streaming decoding"
  python -m asrkit.bin.train_student --mode supervised --config $student_conf \
    --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz --dev-cuts exp/senone/cuts_dev.jsonl.gz \
    --tree exp/senone/tree --cmvn data/cmvn.npz --num-senones $(num_senones) --out-dir exp/student_sup ${nnet_opts:-}
  nnet_decode exp/student_sup true
}

stage_10() {
  log "Stage 10: the teacher labels train_unsup (top $topk posteriors per frame) in $nj jobs"
  $train_cmd JOB=1:$nj exp/pseudo/log/label.JOB.log \
    python -m asrkit.bin.pseudo_label --model exp/teacher/best.pt --cuts data/fbank/cuts_train_unsup.jsonl.gz \
      --cmvn data/cmvn.npz --tree exp/senone/tree --out-dir exp/pseudo --k $topk --shard-size 200 \
      --job JOB --num-jobs $nj --num-threads 1 --no-progress
  python -m asrkit.bin.pseudo_label --out-dir exp/pseudo --merge-index
}

stage_11() {
  log "Stage 11: semi-supervised student, labelled and machine-labelled batches interleaved"
  ssl_student interleaved exp/student_ssl_inter
}

stage_12() {
  log "Stage 12: semi-supervised student, segregated (machine-labelled first, then labelled)"
  ssl_student segregated exp/student_ssl_seg
}

stage_13() {
  log "Stage 13: oracle student on train_sup + train_unsup with its true transcripts (the only reader of them)"
  # the tree, train_sup's and dev's targets are stage 6's (done): only train_unsup is aligned here
  python -m asrkit.bin.make_senones --ali-dir exp/tri --lang data/lang_senone --lang-gmm data/lang \
    --mfcc-dir data/mfcc --fbank-dir data/fbank --cmvn data/cmvn.npz --sets train_sup,dev,train_unsup_oracle \
    --text-from train_unsup_oracle=train_unsup:data/manifests/oracle/cuts_train_unsup.jsonl.gz \
    --num-leaves $num_senones --tree-thresh $senone_tree_thresh --tree-min-count 30 \
    --G data/lm/G.fst --out-dir exp/senone --nj $nj
  python -m asrkit.bin.train_student --mode supervised --config $student_conf \
    --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz exp/senone/cuts_train_unsup_oracle.jsonl.gz \
    --dev-cuts exp/senone/cuts_dev.jsonl.gz --tree exp/senone/tree --cmvn data/cmvn.npz \
    --num-senones $(num_senones) --out-dir exp/student_oracle ${nnet_opts:-} ${ssl_opts:-}
  nnet_decode exp/student_oracle true
}

# The students that need neither the teacher nor each other, in a lane: $1.. the stages (9, 13).
_lane_students() {
  local s
  for s in "$@"; do stage_$s; done
}

# Stages 7-16 within $stage..$stop_stage. When stage 7 runs, stages 9 and 13 (in range) run in a lane
# beside it (they need only stage 6); when stage 11 runs, stage 12 runs in a lane beside it.
nnet_stages() {
  local lanes=() s
  _in_lane() { [[ " ${lanes[*]} " == *" $1 "* ]]; }
  if in_range 7; then
    for s in 9 13; do if in_range $s; then lanes+=($s); fi; done
    if [ ${#lanes[@]} -gt 0 ]; then lane_start students _lane_students "${lanes[@]}"; fi
    stage_7
  fi
  if in_range 8; then stage_8; fi
  if in_range 9 && ! _in_lane 9; then stage_9; fi
  if in_range 10; then stage_10; fi
  if in_range 11; then
    if in_range 12; then lane_start segregated stage_12; lanes+=(12); fi
    stage_11
  fi
  if in_range 12 && ! _in_lane 12; then stage_12; fi
  if in_range 13 && ! _in_lane 13; then stage_13; fi
  lane_wait_all
  if $sweep && in_range 14; then
    log "Stage 14: interleaved students on nested subsets of train_unsup, x($sweep_ratios) the labelled hours"
    ssl_sweep "$sweep_ratios"
  fi
  if $dist && in_range 15; then
    log "Stage 15: the interleaved student under torchrun ($dist_nproc processes), sync modes: $dist_modes"
    for s in $dist_modes; do dist_student $s; done
  fi
  if in_range 16; then
    log "Stage 16: report"
    python -m asrkit.bin.report --exp exp --data data --sets "$eval_sets" --out RESULTS.md --title "$report_title"
    cat RESULTS.md
  fi
  return 0
}
