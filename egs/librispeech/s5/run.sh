#!/usr/bin/env bash
# LibriSpeech (OpenSLR 12) at the article's scale: train-clean-100 labelled, train-clean-360 +
# train-other-500 unlabelled (their transcripts only for the oracle, stage 13), dev-clean, dev-other,
# test-clean, test-other. Paper presets: about 3,000 senones, the 78 M BLSTM teacher, the 24 M LSTM
# student, top-20 pseudo-labels. Expected run times, memory and disk: conf/RUNTIME.md.
#
#   ./run.sh --corpus-dir /data/LibriSpeech              # a local copy (the folder holding train-clean-100/, ...)
#   ./run.sh                                             # downloads the seven subsets into download/ (about 60 GB)
#   ./run.sh --ngpu 8 --sync gtc --stage 7               # networks and labelling on 8 GPUs under torchrun
#   ./run.sh --tiny true                                 # every stage on a tiny synthetic corpus in LibriSpeech's layout
set -euo pipefail

stage=0
stop_stage=16
force=false            # true: stages 1-6 redo done work (they refuse inputs or options changed since)
on_error=fail          # stage 1: a bad utterance fails the recipe (fail) or is skipped, counted (skip)
nj=8                   # parallel CPU jobs (features, GMMs, decoding, CPU labelling)
seed=1
corpus_dir=            # the LibriSpeech folder; empty: download into $download_dir
download_dir=download
base_url=https://www.openslr.org/resources/12
tiny=false             # a synthetic corpus in LibriSpeech's layout, small GMMs and networks (tests, smoke runs)
lm_text=               # LibriSpeech's LM corpus (librispeech-lm-norm.txt.gz, OpenSLR 11); empty: train_sup's transcripts only
lm_max_sentences=1000000   # sentences of $lm_text used (evenly spaced; the trainer holds them in memory)
vocab=                 # a word list joining the lexicon (e.g. librispeech-vocab.txt, OpenSLR 11); empty: the
                       # $vocab_size most frequent words of the --lm-text sample, or without one train_sup's words
vocab_size=200000
lm_order=3
lm_prune=3e-7          # entropy pruning (Kaldi's LibriSpeech tgsmall uses 3e-7)
mono_gauss=2000        # Kaldi's LibriSpeech sizes: monophone 2,000 Gaussians
tri_leaves=4200        # triphone tree leaves / Gaussians on train-clean-100 (Kaldi's tri4b: 4,200 / 40,000)
tri_gauss=40000
num_senones=3000       # the article's senone count (30 ms tree)
senone_tree_thresh=50
gmm_lm_weights=9:15:3
gmm_decode_opts="--beam 11 --max-active 3000"
nnet_lm_weights=1:9:2
teacher_conf=conf/teacher.yaml
teacher_dir=exp/teacher  # the teacher's folder (stages 7, 8, 10); another one keeps a tuning variant beside it
student_conf=conf/student.yaml
stream_chunk=32        # student decodes streaming, 32 frames (0.96 s) at a time
topk=20                # k: teacher posteriors kept per frame
realign_with_teacher=false  # true: the teacher realigns train_sup/dev; a second teacher and supervised student on
                       # those targets (exp/senone_realign, exp/teacher_realign, exp/student_sup_realign)
labelled_lr_mult=2.0
supervised_lr_mult=    # the supervised and oracle students' ("": labelled_lr_mult, equal learning rates; 1.0: plain)
seeds=                 # the students' training seeds, e.g. "1 2 3" (exp/<system>/seed<S>); "": the config's, once
speed_perturb=         # speed factors of train_sup's copies that the teacher and the supervised student also
                       # train on, e.g. "0.9 1.1" (Kaldi's speed perturbation); "": none, as before
pseudo_shard_size=2000
ngpu=0                 # 0: networks on the CPU; N: N GPUs (N > 1: torchrun, NCCL)
sync=ddp               # with ngpu > 1: ddp | gtc | bmuf | ma
sync_opts=             # e.g. "--gtc-target-fraction 0.01" or "--sync-period 50"
torchrun_opts=--standalone   # several nodes: "--nnodes 2 --rdzv-backend c10d --rdzv-endpoint HOST:29400"
sweep=false            # stage 14: students on nested subsets of train_unsup
sweep_ratios="1 2 4 8" # ... holding these multiples of the labelled hours
sweep_order=shuffle    # shuffle: one seeded shuffle of every id; hash: a seeded hash per id, flat memory at any size
dist=false             # stage 15: the interleaved student per sync mode
dist_modes="ddp gtc bmuf"
dist_nproc=2
dist_opts=

help_message="Usage: $0 [options]
  --stage N / --stop-stage M   run stages N..M (default $stage..$stop_stage)
  --force true|false           stages 1-6 redo their done work (default $force); without it they
                               stop on inputs or options changed since they were done
  --on-error fail|skip         stage 1: a bad utterance fails, or is skipped and counted (default $on_error)
  --speed-perturb \"F1 F2\"      speed-perturbed copies of train_sup (e.g. \"0.9 1.1\"), aligned by the triphone
                               GMM (stage 6), that the teacher and the supervised student also train on
                               (default \"$speed_perturb\"; \"\": none)
  --nj K                       parallel CPU jobs (default $nj)
  --corpus-dir DIR             the LibriSpeech folder (train-clean-100/, ...); empty: download (default '$corpus_dir')
  --download-dir DIR           where stage 0 downloads to (default $download_dir)
  --base-url URL               where the subsets' .tar.gz are (default $base_url)
  --tiny true|false            synthetic LibriSpeech-layout corpus and tiny models, every stage in minutes (default $tiny)
  --lm-text FILE               LibriSpeech LM text (.txt or .txt.gz); empty: train_sup's transcripts only
  --lm-max-sentences N         sentences of --lm-text used (default $lm_max_sentences; 0: all)
  --vocab FILE                 word list added to the lexicon (CMUdict, espeak-ng G2P for the rest); empty:
                               the --vocab-size ($vocab_size) most frequent words of the --lm-text sample
  --lm-order N / --lm-prune T  n-gram order and pruning threshold (default $lm_order / $lm_prune)
  --mono-gauss G / --tri-leaves L / --tri-gauss G   GMM sizes (default $mono_gauss / $tri_leaves / $tri_gauss)
  --num-senones N              leaves of the 30 ms senone tree (default $num_senones)
  --teacher-conf / --student-conf FILE   network configs (default $teacher_conf / $student_conf)
  --topk K                     teacher posteriors kept per frame (default $topk)
  --ngpu N                     GPUs for networks and labelling; 0: CPU (default $ngpu)
  --sync MODE                  ddp | gtc | bmuf | ma, with --ngpu > 1 (default $sync); --sync-opts '...'
  --torchrun-opts '...'        torchrun rendezvous (default $torchrun_opts)
  --sweep true|false           stage 14 over --sweep-ratios '$sweep_ratios' (default $sweep)
  --dist true|false            stage 15 over --dist-modes '$dist_modes' (default $dist)
  --seeds \"S1 S2 ...\"          the students' seeds (stages 9, 11-14), exp/<system>/seed<S> when several (default '$seeds')
  --supervised-lr-mult M       the supervised and oracle students' LR multiplier (default '$supervised_lr_mult':
                               --labelled-lr-mult's, $labelled_lr_mult; 1.0: plain training)"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. utils/log.sh
case $on_error in fail|skip) ;; *) echo "$0: --on-error is fail or skip, not '$on_error'" >&2; exit 1 ;; esac
. utils/shared_stages.sh
check_speed_perturb    # a factor that is not a number > 0 stops the recipe here, before stage 0

sets="train_sup train_unsup dev_clean dev_other test_clean test_other"
eval_sets="dev_clean dev_other test_clean test_other"
dev_set=dev_clean      # validates the networks; test_other takes its LM weight from dev_other
report_title="egs/librispeech/s5 results"
lexicon_opts="--cmudict"   # CMUdict (stress-free), espeak-ng G2P for words it lacks
vocab_text=$vocab
nnet_opts=
nnet_avg=1             # N > 1: decode, label and realign with the mean of the last N epoch checkpoints (icefall --avg)

if $tiny; then         # what about 30 s of speech per set supports (as egs/synth/s5 --tiny)
  corpus_dir=corpus/LibriSpeech
  lm_text=corpus/librispeech-lm-norm.txt.gz
  nj=2; mono_gauss=100; tri_leaves=60; tri_gauss=150; num_senones=40; lm_prune=0; pseudo_shard_size=200
  sweep_ratios="1"
  nnet_opts="--preset tiny --num-epochs 2 --max-frames 1000 --num-workers 1 --num-threads 1 --warmup-steps 10 --amp false"
  # an untrained tiny network's flat posteriors fill any beam: a narrow search and two LM weights keep decoding in seconds
  gmm_decode_opts="--beam 8 --max-active 500"; nnet_decode_opts="--beam 8 --max-active 500"
  gmm_lm_weights=9:12:3; nnet_lm_weights=1:3:2
fi
[ -n "$corpus_dir" ] || corpus_dir=$download_dir/LibriSpeech

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  if $tiny; then
    log "Stage 0: a tiny synthetic corpus in LibriSpeech's layout under corpus/"
    python "$asrkit_root/local/make_tiny_librispeech.py" --seed $seed --nj $nj --no-progress corpus
  elif [ -d "$corpus_dir/train-clean-100" ] && [ -d "$corpus_dir/test-other" ]; then
    log "Stage 0: using the corpus at $corpus_dir"
  else
    log "Stage 0: downloading LibriSpeech from $base_url into $download_dir (resumable)"
    python -m asrkit.bin.prepare_librispeech download --dest "$download_dir" --base-url "$base_url"
    corpus_dir=$download_dir/LibriSpeech
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: Kaldi data dirs through lhotse's LibriSpeech recipe, manifests, validation"
  python -m asrkit.bin.prepare_librispeech kaldi $(forced) --on-error $on_error --corpus-dir "$corpus_dir" --out-dir data/local/corpus --nj $nj
  for set in $sets; do
    labelled=true; oracle=()
    if [ $set = train_unsup ]; then labelled=false; oracle=(--oracle-text data/local/corpus/oracle/$set/text); fi
    python -m asrkit.bin.prepare_manifests $(forced) --on-error $on_error --data-dir data/local/corpus/$set --audio-root "$corpus_dir" \
      --set $set --labelled $labelled "${oracle[@]}" --out-dir data/manifests --kaldi-view-dir data/$set
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
# Stage 3 on a sample of the LM corpus when one is given (the trainer holds it in memory)
stage_3() {
  if [ -n "$lm_text" ]; then
    python local/prepare_lm_text.py --in "$lm_text" --max-sentences $lm_max_sentences --out data/local/lm_text.txt \
      --vocab-out data/local/lm_vocab.txt --vocab-size $vocab_size
    lm_text=data/local/lm_text.txt
    [ -n "$vocab_text" ] || vocab_text=data/local/lm_vocab.txt
  fi
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
