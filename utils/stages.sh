# Stage functions shared by the recipes (sourced by egs/*/s5/run.sh after parse_options.sh).
# They read the recipe's variables: nj, eval_sets, gmm_lm_weights, gmm_decode_opts, nnet_lm_weights,
# stream_chunk, student_conf, labelled_lr_mult; optional: nnet_opts (TrainConfig overrides of every
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
      "${weights[@]}" --nj $nj --out $sys/decode_$set
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
