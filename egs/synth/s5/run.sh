#!/usr/bin/env bash
# The default asrkit recipe: a synthetic espeak-ng corpus (no download), labelled + unlabelled
# speech, dev, test_clean and test_noisy. Stages follow the table in docs/design.md (and the README).
#
#   ./run.sh                      # every finished stage, from 0
#   ./run.sh --stage 2 --stop-stage 2
#   ./run.sh --labelled-hours 0.05 --nj 2   # a tiny corpus
set -euo pipefail

stage=0
stop_stage=16           # the whole experiment (stages 14 and 15 only with --sweep / --dist true)
force=false            # true: stages 1-6 redo done work (they refuse inputs or options changed since)
on_error=fail          # stage 1: a bad utterance fails the recipe (fail) or is skipped, counted (skip)
nj=2                   # parallel jobs
seed=1
corpus_dir=corpus      # where stage 0 writes the synthetic corpus
labelled_hours=0.4     # train_sup
unlabelled_ratio=4     # train_unsup = ratio x labelled
eval_hours=0.167       # dev, test_clean, test_noisy each
tiny=false             # a corpus of about 30 s per set with GMMs and networks to match (tests, smoke runs)
lm_order=3
lm_prune=1e-5          # entropy pruning of the LM: a smaller G, a smaller and faster HCLG
mono_gauss=1000        # Gaussians of the monophone GMM
tri_leaves=250         # leaves of the triphone GMM's tree (chosen on dev: 200-1500 tried)
tri_gauss=2000         # Gaussians of the triphone GMM (8 per leaf: many voices per state)
num_senones=400        # leaves of the 30 ms senone tree (what 0.4 h of speech supports)
senone_tree_thresh=50  # smallest likelihood gain of a senone-tree split (Kaldi's build-tree --thresh)
gmm_lm_weights=9:15:3  # LM weights swept when decoding dev with the GMMs
gmm_decode_opts="--beam 11 --max-active 3000"
nnet_lm_weights=2:5:1  # LM weights swept when decoding dev with the networks (every network chose 3 of 1:9:2)
nnet_decode_opts="--beam 10 --max-active 2000"  # 2.5x faster than 13/7000 at equal dev WER (50.15, ssl_inter; measured with the previous session's models)
teacher_conf=conf/teacher.yaml
student_conf=conf/student.yaml
stream_chunk=32        # the student decodes streaming, 32 frames (0.96 s) at a time
topk=20                # posteriors kept per frame by the teacher
labelled_lr_mult=2.0   # learning-rate multiplier on labelled batches (every student)
supervised_lr_mult=    # the supervised and oracle students' ("": labelled_lr_mult, equal learning rates; 1.0: plain)
seeds=                 # the students' training seeds, e.g. "1 2 3" (exp/<system>/seed<S>); "": the config's, once
ssl_opts=               # more options of the students on more than train_sup (stages 11-15); they make as
                       # many updates as the supervised student (train_student --equal-updates true)
sweep=false            # stage 14: the interleaved student with less unlabelled data
sweep_ratios="1 2"     # its points: unlabelled hours / labelled hours, below the full set's (unlabelled_ratio)
sweep_seed=0           # the one shuffle of train_unsup that the sweep's nested subsets are prefixes of
dist=false             # stage 15: the interleaved student under torchrun, once per sync mode
dist_modes="ddp gtc bmuf"
dist_nproc=2           # processes (gloo on CPU; one thread each, see conf/student.yaml)
# BMUF block length; GTC: share of elements sent and DGC's sparsity warm-up (what made GTC learn on toy data:
# -0.8% dev frame accuracy against ddp at x105.7 over 552 updates, docs/scaling_workers.md; not yet run here)
dist_opts="--sync-period 50 --gtc-target-fraction 0.005 --gtc-warmup-steps 100 --gtc-warmup-fraction 0.05"
dist_sim_workers=       # stage 15 also: e.g. "1 4 16 64" simulated workers per mode (asrkit.distributed.simulate)
dist_sim_modes="ddp gtc bmuf"
dist_sim_decode=true

. utils/shared_stages.sh   # stages 7-16 and their options' help

help_message="Usage: $0 [options]
  --stage N / --stop-stage M   run stages N..M (default $stage..$stop_stage)
  --force true|false           stages 1-6 redo their done work (default $force); without it they
                               stop on inputs or options changed since they were done
  --on-error fail|skip         stage 1: a bad utterance fails, or is skipped and counted (default $on_error)
  --nj K                       parallel jobs (default $nj)
  --seed S                     corpus seed (default $seed)
  --corpus-dir DIR             synthetic corpus location (default $corpus_dir)
  --labelled-hours H           labelled hours (default $labelled_hours)
  --unlabelled-ratio R         unlabelled hours / labelled hours (default $unlabelled_ratio)
  --eval-hours H               hours in each of dev, test_clean, test_noisy (default $eval_hours)
  --tiny true|false            about 30 s of audio per set, small GMMs, tiny networks trained 2 epochs,
                               for smoke tests; it overrides the sizes below (default $tiny)
  --lm-order N                 n-gram order of the LM (default $lm_order)
  --lm-prune T                 entropy pruning threshold of the LM, 0 for none (default $lm_prune)
  --mono-gauss G / --tri-leaves L / --tri-gauss G   GMM sizes (default $mono_gauss / $tri_leaves / $tri_gauss)
  --num-senones N              leaves of the 30 ms senone tree (default $num_senones)
  --senone-tree-thresh T       smallest gain of a senone-tree split (default $senone_tree_thresh)
$(nnet_stage_options_help)
  --gmm-lm-weights W           LM weights swept on dev for the GMM systems (default $gmm_lm_weights)"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. utils/log.sh
case $on_error in fail|skip) ;; *) echo "$0: --on-error is fail or skip, not '$on_error'" >&2; exit 1 ;; esac
. utils/stages.sh

nnet_opts=             # TrainConfig overrides given to every network training (after the yaml)
if $tiny; then         # what 30 s of speech supports; every stage runs in seconds
  mono_gauss=100; tri_leaves=60; tri_gauss=150; num_senones=40
  nnet_opts="--preset tiny --num-epochs 2"; ssl_opts=
  sweep_ratios="0.25 0.5"   # train_unsup holds about 1x train_sup here
  dist_opts="--sync-period 5 --gtc-target-fraction 0.01"  # about 20 steps a rank: 4 BMUF blocks
fi

labelled_sets="train_sup dev test_clean test_noisy"

eval_sets="dev test_clean test_noisy"

all_sets="train_sup train_unsup dev test_clean test_noisy"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: synthesising the corpus in $corpus_dir"
  if $tiny; then
    size_opts=(--tiny)
  else
    size_opts=(--hours-train-sup "$labelled_hours" --unsup-ratio "$unlabelled_ratio"
               --hours-dev "$eval_hours" --hours-test-clean "$eval_hours" --hours-test-noisy "$eval_hours")
  fi
  python "$asrkit_root/local/make_synth_corpus.py" --seed "$seed" --nj "$nj" "${size_opts[@]}" "$corpus_dir"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: manifests and validation"
  for set in $all_sets; do
    labelled=true; oracle=()
    if [ $set = train_unsup ]; then
      labelled=false; oracle=(--oracle-text "$corpus_dir/oracle/$set/text")
    fi
    python -m asrkit.bin.prepare_manifests $(forced) --on-error $on_error --data-dir "$corpus_dir/data/$set" \
      --audio-root "$corpus_dir" --set $set --labelled $labelled "${oracle[@]}" \
      --out data/manifests --kaldi-view-dir data/$set
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: fbank and MFCC for every set (train_unsup's MFCC only for the oracle), CMVN from train_sup"
  for set in $all_sets; do
    python -m asrkit.bin.compute_features $(forced --overwrite) --cuts data/manifests/cuts_$set.jsonl.gz \
      --out-dir data/fbank --set $set --kind fbank --num-jobs $nj
  done
  # MFCC of train_unsup too: only the oracle student (stage 13) aligns it, with its true text
  for set in $all_sets; do
    python -m asrkit.bin.compute_features $(forced --overwrite) --cuts data/manifests/cuts_$set.jsonl.gz \
      --out-dir data/mfcc --set $set --kind mfcc --num-jobs $nj
  done
  python -m asrkit.bin.compute_cmvn $(forced --overwrite) --cuts data/fbank/cuts_train_sup.jsonl.gz --out data/cmvn.npz
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: lexicon, data/lang (3-state), data/lang_senone (1-state), $lm_order-gram LM"
  python -m asrkit.bin.prepare_lang $(forced) --lexicon "$corpus_dir/lexicon.txt" \
    --text data/train_sup/text --out-dir data
  python -m asrkit.bin.train_lm $(forced) --text data/train_sup/text --plain-text "$corpus_dir/lm_text.txt" \
    --order $lm_order --prune-threshold $lm_prune --words data/lang/words.txt --dev-text data/dev/text --out-dir data/lm
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: monophone GMM-HMM at 10 ms, dev decoding, alignment accuracy"
  python -m asrkit.bin.train_gmm $(forced) --type mono --cuts data/mfcc/cuts_train_sup.jsonl.gz --lang data/lang \
    --out-dir exp/mono --num-gauss $mono_gauss --nj $nj
  gmm_graph_and_decode exp/mono align
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: triphone GMM-HMM from the monophone alignments, dev decoding, alignment accuracy"
  python -m asrkit.bin.train_gmm $(forced) --type tri --cuts data/mfcc/cuts_train_sup.jsonl.gz --lang data/lang \
    --ali-dir exp/mono --out-dir exp/tri --num-leaves $tri_leaves --num-gauss $tri_gauss --nj $nj
  gmm_graph_and_decode exp/tri align
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: senone tree at 30 ms ($num_senones leaves at most), per-frame targets, priors, senone HCLG"
  python -m asrkit.bin.make_senones $(forced) --ali-dir exp/tri --lang data/lang_senone --lang-gmm data/lang \
    --mfcc-dir data/mfcc --fbank-dir data/fbank --cmvn data/cmvn.npz --sets train_sup,dev \
    --num-leaves $num_senones --tree-thresh $senone_tree_thresh --tree-min-count 30 \
    --G data/lm/G.fst --out-dir exp/senone --nj $nj
  cat exp/senone/occupancy.txt
fi

report_title="egs/synth/s5 results"
sets="$all_sets"; pseudo_shard_size=200
shared_stages 7 16   # networks, pseudo-labels, students, sweep, dist, report (utils/shared_stages.sh)

log "Done: stages $stage..$stop_stage"
