# GMM stages' helpers of egs/synth and egs/speechocean762 (sourced by their run.sh after parse_options.sh;
# their stages 7-16 are utils/shared_stages.sh's). They read the recipe's variables: nj, eval_sets,
# gmm_lm_weights, gmm_decode_opts; and its layout: data/, exp/.

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
