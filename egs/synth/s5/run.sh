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
nnet_avg=1             # N > 1: decode, label and realign with the mean of the last N epoch checkpoints (icefall --avg)
teacher_conf=conf/teacher.yaml
teacher_dir=exp/teacher  # the teacher's folder (stages 7, 8, 10); another one keeps a tuning variant beside it
student_conf=conf/student.yaml
stream_chunk=32        # the student decodes streaming, 32 frames (0.96 s) at a time
topk=20                # posteriors kept per frame by the teacher
realign_with_teacher=false  # true: the teacher realigns train_sup/dev; a second teacher and supervised student on
                       # those targets (exp/senone_realign, exp/teacher_realign, exp/student_sup_realign)
labelled_lr_mult=2.0   # learning-rate multiplier on labelled batches (every student)
supervised_lr_mult=    # the supervised and oracle students' ("": labelled_lr_mult, equal learning rates; 1.0: plain)
seeds=                 # the students' training seeds, e.g. "1 2 3" (exp/<system>/seed<S>); "": the config's, once
speed_perturb=         # speed factors of train_sup's copies that the teacher and the supervised student also
                       # train on, e.g. "0.9 1.1" (Kaldi's speed perturbation); "": none, as before
ssl_opts=               # more options of the students on more than train_sup (stages 11-15); they make as
                       # many updates as the supervised student (train_student --equal-updates true)
sweep=false            # stage 14: the interleaved student with less unlabelled data
sweep_ratios="1 2"     # its points: unlabelled hours / labelled hours, below the full set's (unlabelled_ratio)
sweep_seed=0           # the one shuffle of train_unsup that the sweep's nested subsets are prefixes of
sweep_order=shuffle    # shuffle: one seeded shuffle of every id; hash: a seeded hash per id, flat memory at any size
dist=false             # stage 15: the interleaved student under torchrun, once per sync mode
dist_modes="ddp gtc bmuf"
dist_nproc=2           # processes (gloo on CPU; one thread each, see conf/student.yaml)
# BMUF block length; GTC: share of elements sent, DGC's sparsity warm-up (toy data: -0.8% dev frame accuracy
# against ddp at x105.7) and the sparse Adam (here at 2 processes: x103, dev frame accuracy 0.336 against
# ddp's 0.415 (0.313 without it); docs/scaling_workers.md)
dist_opts="--sync-period 50 --gtc-target-fraction 0.005 --gtc-warmup-steps 100 --gtc-warmup-fraction 0.05 --gtc-sparse-adam true"
dist_sim_workers=       # stage 15 also: e.g. "1 4 16 64" simulated workers per mode (asrkit.distributed.simulate)
dist_sim_modes="ddp gtc bmuf"
dist_sim_decode=true

. utils/shared_stages.sh   # the shared steps of stages 2-16 and their options' help

help_message="Usage: $0 [options]
  --stage N / --stop-stage M   run stages N..M (default $stage..$stop_stage)
  --force true|false           stages 1-6 redo their done work (default $force); without it they
                               stop on inputs or options changed since they were done
  --on-error fail|skip         stage 1: a bad utterance fails, or is skipped and counted (default $on_error)
  --speed-perturb \"F1 F2\"      speed-perturbed copies of train_sup (e.g. \"0.9 1.1\"), aligned by the triphone
                               GMM (stage 6), that the teacher and the supervised student also train on
                               (default \"$speed_perturb\"; \"\": none)
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
check_speed_perturb    # a factor that is not a number > 0 stops the recipe here, before stage 0

nnet_opts=             # TrainConfig overrides given to every network training (after the yaml)
if $tiny; then         # what 30 s of speech supports; every stage runs in seconds
  mono_gauss=100; tri_leaves=60; tri_gauss=150; num_senones=40
  nnet_opts="--preset tiny --num-epochs 2"; ssl_opts=
  # an untrained tiny network's flat posteriors fill any beam: a narrow search and two LM weights keep decoding in seconds
  gmm_decode_opts="--beam 8 --max-active 500"; nnet_decode_opts="--beam 8 --max-active 500"
  gmm_lm_weights=9:12:3; nnet_lm_weights=1:3:2
  sweep_ratios="0.25 0.5"   # train_unsup holds about 1x train_sup here
  dist_opts="--sync-period 5 --gtc-target-fraction 0.01"  # about 20 steps a rank: 4 BMUF blocks
fi

sets="train_sup train_unsup dev test_clean test_noisy"
eval_sets="dev test_clean test_noisy"
dev_set=dev
lexicon_opts="--lexicon $corpus_dir/lexicon.txt"   # stage 0's lexicon of every word of the corpus
lm_text=$corpus_dir/lm_text.txt   # stage 0's LM text, besides train_sup's transcripts
pseudo_shard_size=200
report_title="egs/synth/s5 results"

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
  for set in $sets; do
    labelled=true; oracle=()
    if [ $set = train_unsup ]; then
      labelled=false; oracle=(--oracle-text "$corpus_dir/oracle/$set/text")
    fi
    python -m asrkit.bin.prepare_manifests $(forced) --on-error $on_error --data-dir "$corpus_dir/data/$set" \
      --audio-root "$corpus_dir" --set $set --labelled $labelled "${oracle[@]}" \
      --out-dir data/manifests --kaldi-view-dir data/$set
  done
fi

# Stages 2-16: the shared steps of utils/shared_stages.sh, their inputs and outputs named here.
stage_2() {
  perturb_speed data/manifests train_sup data/manifests   # --speed-perturb: train_sup's copies (none by default)
  compute_features data/manifests fbank data/fbank $sets $(sp_sets train_sup)
  # MFCC of train_unsup too: only the oracle student (stage 13) aligns it, with its true text; of the copies:
  # stage 6 aligns them
  compute_features data/manifests mfcc data/mfcc $sets $(sp_sets train_sup)
  compute_cmvn data/fbank/cuts_train_sup.jsonl.gz data/cmvn.npz
}
stage_3() {
  prepare_lang data/train_sup/text data
  train_lm data/train_sup/text data/lang/words.txt data/$dev_set/text data/lm
}
# Stages 4-5: the corpus records the true phone times, so each GMM's alignment of train_sup is scored
# against them (exp/<system>/ali_eval/boundaries.json).
stage_4() {
  train_mono data/mfcc/cuts_train_sup.jsonl.gz data/lang exp/mono
  gmm_decode data/lang data/lm/G.fst data/mfcc exp/mono
  gmm_align data/mfcc/cuts_train_sup.jsonl.gz data/lang exp/mono exp/mono/ali_eval
}
stage_5() {
  train_tri data/mfcc/cuts_train_sup.jsonl.gz data/lang exp/mono exp/tri
  gmm_decode data/lang data/lm/G.fst data/mfcc exp/tri
  gmm_align data/mfcc/cuts_train_sup.jsonl.gz data/lang exp/tri exp/tri/ali_eval
}
stage_6() {
  make_senones data data/lang data/lang_senone data/lm/G.fst exp/tri exp/senone train_sup,$dev_set$(sp_sets train_sup ,)
  check_senone_targets exp/senone $dev_set
}
stage_7() {
  train_teacher data exp/senone $teacher_dir $(sp_cuts exp/senone train_sup)
  if $realign_with_teacher; then  # issue 13: better targets, the teacher's realignment (of train_sup and
    # dev; speed-perturbed copies are not realigned), and a teacher on them
    realign_with_network data data/lang_senone exp/senone $teacher_dir exp/senone_realign
    train_teacher data exp/senone_realign exp/teacher_realign
  fi
}
stage_8() {
  nnet_decode data exp/senone $teacher_dir false
  if $realign_with_teacher; then nnet_decode data exp/senone_realign exp/teacher_realign false; fi
}
stage_9() {
  train_students supervised data exp/senone exp/student_sup \
    --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz $(sp_cuts exp/senone train_sup)
  if $realign_with_teacher; then
    train_students supervised data exp/senone_realign exp/student_sup_realign \
      --labelled-cuts exp/senone_realign/cuts_train_sup.jsonl.gz
  fi
}
stage_10() {
  need_unsup 10 || return 0
  pseudo_label data $teacher_dir exp/senone exp/pseudo
}
stage_11() {
  need_unsup 11 || return 0
  train_students interleaved data exp/senone exp/student_ssl_inter --unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz \
    --pseudo-dir exp/pseudo --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz
}
stage_12() {
  need_unsup 12 || return 0
  train_students segregated data exp/senone exp/student_ssl_seg --unlabelled-cuts data/fbank/cuts_train_unsup.jsonl.gz \
    --pseudo-dir exp/pseudo --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz
}
stage_13() {  # the oracle: train_unsup with its true transcripts (their only reader), aligned by the GMM
  need_unsup 13 || return 0
  has_oracle data/manifests/oracle/cuts_train_unsup.jsonl.gz 13 || return 0
  make_senones data data/lang data/lang_senone data/lm/G.fst exp/tri exp/senone train_sup,$dev_set,train_unsup_oracle \
    --text-from train_unsup_oracle=train_unsup:data/manifests/oracle/cuts_train_unsup.jsonl.gz
  train_students supervised data exp/senone exp/student_oracle \
    --labelled-cuts exp/senone/cuts_train_sup.jsonl.gz exp/senone/cuts_train_unsup_oracle.jsonl.gz ${ssl_opts:-}
}
stage_14() {
  $sweep || return 0
  need_unsup 14 || return 0
  sweep_students data exp/senone exp/pseudo exp/sweep
}
stage_15() {
  $dist || return 0
  need_unsup 15 || return 0
  dist_students data exp/senone exp/pseudo exp
}
stage_16() { make_report exp data RESULTS.md; }

shared_stages 2 16   # features, lang, GMMs, senones, networks, pseudo-labels, students, sweep, dist, report

log "Done: stages $stage..$stop_stage"
