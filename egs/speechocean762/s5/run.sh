#!/usr/bin/env bash
# Real read English: speechocean762 (OpenSLR 101), its training split of 125 speakers (2.9 h),
# carved by speaker into train_sup (labelled), train_unsup (unlabelled), dev and test.
#
#   ./run.sh --corpus-dir /path/to/speechocean762     # a local copy (absolute or relative to here)
#   ./run.sh                                          # downloads OpenSLR 101 into download/
set -euo pipefail

stage=0
stop_stage=16           # the whole experiment (stages 14 and 15 only with --sweep / --dist true)
force=false            # true: stages 1-6 redo done work (they refuse inputs or options changed since)
on_error=skip          # stage 1: a bad utterance is skipped, counted (the corpus has a few; fail: stop on one)
nj=2
seed=762
corpus_dir=            # a local copy of the corpus; empty: download it
download_dir=download
url=https://www.openslr.org/resources/101/speechocean762.tar.gz
lm_order=3
strip_stress=true      # CMU phones without stress digits: fewer phones for 2.9 h of speech
mono_gauss=1000        # Gaussians of the monophone GMM
tri_leaves=300         # leaves of the triphone GMM's tree (1.1 h: more overfits the 50 speakers)
tri_gauss=3000         # Gaussians of the triphone GMM (about 135 frames each)
num_senones=600        # leaves of the 30 ms senone tree (what 1.1 h of labelled speech supports)
senone_tree_thresh=50  # smallest likelihood gain of a senone-tree split (Kaldi's build-tree --thresh)
gmm_lm_weights=9:15:3  # LM weights swept when decoding dev with the GMMs
gmm_decode_opts="--beam 11 --max-active 3000"
nnet_lm_weights=3:7:2  # LM weights swept on dev for the networks (each chose 3 or 5 of 1:9:2; 9 took 40% of the time)
nnet_decode_opts=      # decoder options of the networks (empty: the decoder's beam 13 / max-active 7000)
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
sweep_ratios="0.25 0.5"  # its points: unlabelled hours / labelled hours, below the full set's (0.89x)
sweep_seed=0           # the one shuffle of train_unsup that the sweep's nested subsets are prefixes of
sweep_order=shuffle    # shuffle: one seeded shuffle of every id; hash: a seeded hash per id, flat memory at any size
dist=false             # stage 15: the interleaved student under torchrun, once per sync mode
dist_modes="ddp gtc bmuf"
dist_nproc=2           # processes (gloo on CPU; one thread each, see conf/student.yaml)
dist_opts="--sync-period 50 --gtc-target-fraction 0.01"  # BMUF block length, GTC share of elements sent (as egs/synth/s5: 0.001 barely trained there)

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
  --corpus-dir DIR             local copy of speechocean762 (holds train/ and resource/); empty: download
  --download-dir DIR           where the download goes (default $download_dir)
  --seed S                     seed of the speaker split (default $seed)
  --lm-order N                 n-gram order of the LM (default $lm_order)
  --strip-stress true|false    drop stress digits from the lexicon's phones (default $strip_stress)
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

sets="train_sup train_unsup dev test"
eval_sets="dev test"
dev_set=dev
if [ -z "$corpus_dir" ]; then
  corpus_dir=$download_dir/speechocean762
fi
stress_opts="--phone-set cmu-stressed"
if $strip_stress; then stress_opts="--strip-stress --phone-set cmu"; fi
lexicon_opts="--lexicon $corpus_dir/resource/lexicon.txt $stress_opts"   # the corpus's CMU-style lexicon
pseudo_shard_size=200
report_title="egs/speechocean762/s5 results"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if [ -f "$corpus_dir/train/wav.scp" ]; then
    log "Stage 0: using the corpus at $corpus_dir"
  else
    log "Stage 0: downloading $url into $download_dir"
    python -m asrkit.bin.download --url "$url" --dest "$download_dir"
    [ -f "$corpus_dir/train/wav.scp" ] || { log "no train/wav.scp under $corpus_dir after download"; exit 1; }
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: manifests, validation, speaker-disjoint split"
  python -m asrkit.bin.split_corpus $(forced) --on-error $on_error --corpus-dir "$corpus_dir" \
    --seed $seed --out-dir data/manifests --kaldi-view-root data
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
stage_4() {
  train_mono data/mfcc/cuts_train_sup.jsonl.gz data/lang exp/mono
  gmm_decode data/lang data/lm/G.fst data/mfcc exp/mono
}
stage_5() {
  train_tri data/mfcc/cuts_train_sup.jsonl.gz data/lang exp/mono exp/tri
  gmm_decode data/lang data/lm/G.fst data/mfcc exp/tri
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
