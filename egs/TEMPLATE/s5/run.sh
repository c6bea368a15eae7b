#!/usr/bin/env bash
# Your own corpus. Copy this folder to egs/<corpus>/s5 and run it on a Kaldi data dir or a lhotse
# manifest of transcribed speech, with a lexicon (or --lexicon-type graphemic for none). The corpus
# is split by speaker into train_sup (labelled), train_unsup (used unlabelled: its transcripts only for
# the oracle, stage 13), dev and test; stages 2-16 (below) are calls of the shared steps of
# utils/shared_stages.sh on this recipe's dirs, given the options below. See README.md beside this file.
#
#   ./run.sh --data-dir /path/to/kaldi/data/all --lexicon /path/to/lexicon.txt
#   ./run.sh --cuts /path/to/cuts.jsonl.gz --lexicon-type cmudict
#   ./run.sh --data-dir data_in --unlabelled-dir untranscribed --lexicon-type graphemic
set -euo pipefail

stage=0
stop_stage=16
force=false            # true: stages 1-6 redo done work (they refuse inputs or options changed since)
on_error=fail          # stage 1: a bad utterance fails the recipe (fail) or is skipped, counted (skip)
nj=4
seed=0
data_dir=              # a Kaldi data dir: wav.scp, text, utt2spk [, segments]
cuts=                  # or a lhotse CutSet manifest ...
recordings=            # ... or lhotse recordings + supervisions manifests
supervisions=
audio_root=.           # relative audio paths (wav.scp or manifests) start here
unlabelled_dir=        # optional: a Kaldi data dir of untranscribed speech, used as train_unsup
proportions=train_sup=0.4,train_unsup=0.35,dev=0.1,test=0.15   # speaker shares, in this order
sample_rate=16000      # audio at another rate is refused (0: any, resampled to 16 kHz in stage 2)
channel=               # multi-channel audio is refused unless one channel is taken (0-based) ...
downmix=false          # ... or the channels are averaged
lexicon_type=lexicon   # lexicon (--lexicon FILE) | cmudict | graphemic (word pieces as units: no lexicon)
lexicon=               # WORD ph ph ... lines
lexicon_extra=         # more prepare_lang options, e.g. "--strip-stress --cmudict-fallback" or "--no-g2p"
graphemic_vocab_size=200
lm_text=               # more LM training text (plain sentences, one per line, no ids); default: train_sup's transcripts
vocab=                 # a word list (or plain text, no ids) whose words join the lexicon; default: the words of --lm-text.
                       # With --lexicon-type cmudict or graphemic the vocabulary is otherwise train_sup's words only
lm_order=3
lm_prune=0
mono_gauss=1000        # sizes for a few hours of speech (egs/speechocean762/s5: 1.1 h labelled)
tri_leaves=300
tri_gauss=3000
num_senones=600
senone_tree_thresh=50
gmm_lm_weights=9:15:3
gmm_decode_opts="--beam 11 --max-active 3000"
nnet_lm_weights=1:9:2
teacher_conf=conf/teacher.yaml
teacher_dir=exp/teacher  # the teacher's folder (stages 7, 8, 10); another one keeps a tuning variant beside it
student_conf=conf/student.yaml
stream_chunk=32
topk=20
realign_with_teacher=false  # true: the teacher realigns train_sup/dev; a second teacher and supervised student on
                       # those targets (exp/senone_realign, exp/teacher_realign, exp/student_sup_realign)
labelled_lr_mult=2.0
supervised_lr_mult=    # the supervised and oracle students' ("": labelled_lr_mult, equal learning rates; 1.0: plain)
seeds=                 # the students' training seeds, e.g. "1 2 3" (exp/<system>/seed<S>); "": the config's, once
speed_perturb=         # speed factors of train_sup's copies that the teacher and the supervised student also
                       # train on, e.g. "0.9 1.1" (Kaldi's speed perturbation); "": none, as before
pseudo_shard_size=500
tiny=false             # tiny GMMs and networks for a corpus of a minute or two (smoke tests)
ngpu=0                 # 0: networks on the CPU; N: N GPUs (N > 1: torchrun, NCCL)
sync=ddp               # with ngpu > 1: ddp | gtc | bmuf | ma
sync_opts=
torchrun_opts=--standalone
sweep=false
sweep_ratios="1 2"
sweep_order=shuffle    # shuffle: one seeded shuffle of every id; hash: a seeded hash per id, flat memory at any size
dist=false
dist_modes="ddp gtc bmuf"
dist_nproc=2
dist_opts=

help_message="Usage: $0 [options]  (the corpus: --data-dir, or --cuts, or --recordings with --supervisions)
  --stage N / --stop-stage M   run stages N..M (default $stage..$stop_stage)
  --force true|false           stages 1-6 redo their done work (default $force); without it they
                               stop on inputs or options changed since they were done
  --on-error fail|skip         stage 1: a bad utterance fails, or is skipped and counted (default $on_error)
  --speed-perturb \"F1 F2\"      speed-perturbed copies of train_sup (e.g. \"0.9 1.1\"), aligned by the triphone
                               GMM (stage 6), that the teacher and the supervised student also train on
                               (default \"$speed_perturb\"; \"\": none)
  --nj K                       parallel CPU jobs (default $nj)
  --data-dir DIR               Kaldi data dir of transcribed speech (wav.scp, text, utt2spk [, segments])
  --cuts FILE                  or a lhotse CutSet; or --recordings FILE --supervisions FILE
  --audio-root DIR             where relative audio paths start (default $audio_root)
  --unlabelled-dir DIR         optional Kaldi data dir of untranscribed speech (train_unsup); then give
                               --proportions without train_unsup
  --proportions SPEC           speaker shares (default $proportions)
  --sample-rate R              the audio's rate; 0: any, resampled to 16 kHz (default $sample_rate)
  --channel N / --downmix true multi-channel audio: take channel N (0-based), or average the channels
  --seed S                     seed of the speaker split (default $seed)
  --lexicon-type T             lexicon | cmudict | graphemic (default $lexicon_type)
  --lexicon FILE               with --lexicon-type lexicon: WORD ph ph ... lines
  --lexicon-extra '...'        more prepare_lang options (default '$lexicon_extra')
  --graphemic-vocab-size N     word pieces of the graphemic lexicon (default $graphemic_vocab_size)
  --lm-text FILE               more LM text (plain sentences); --lm-order N, --lm-prune T (default $lm_order, $lm_prune)
  --vocab FILE                 word list (or plain text) joining the lexicon (default: the words of --lm-text)
  --mono-gauss G / --tri-leaves L / --tri-gauss G / --num-senones N   model sizes
  --teacher-conf / --student-conf FILE   network configs (default $teacher_conf / $student_conf)
  --tiny true|false            tiny sizes for a corpus of a minute or two (default $tiny)
  --ngpu N / --sync MODE / --sync-opts '...' / --torchrun-opts '...'   GPUs and torchrun
  --sweep true|false / --dist true|false   stages 14 and 15 (default $sweep / $dist)
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

sets="train_sup dev test"
if [[ ,$proportions, == *,train_unsup=* ]] || [ -n "$unlabelled_dir" ]; then sets="train_sup train_unsup dev test"; fi
eval_sets="dev test"
dev_set=dev
report_title="$(basename "$(cd ../ && pwd)") results"
case $lexicon_type in
  lexicon)
    [ -n "$lexicon" ] || { echo "$0: --lexicon-type lexicon needs --lexicon FILE (or --lexicon-type graphemic)" >&2; exit 1; }
    lexicon_opts="--lexicon $lexicon $lexicon_extra" ;;
  cmudict) lexicon_opts="--cmudict $lexicon_extra" ;;
  graphemic) lexicon_opts="--graphemic --graphemic-vocab-size $graphemic_vocab_size $lexicon_extra" ;;
  *) echo "$0: --lexicon-type is lexicon, cmudict or graphemic, not '$lexicon_type'" >&2; exit 1 ;;
esac
vocab_text=${vocab:-$lm_text}
nnet_opts=
nnet_avg=1             # N > 1: decode, label and realign with the mean of the last N epoch checkpoints (icefall --avg)
if $tiny; then
  mono_gauss=100; tri_leaves=60; tri_gauss=150; num_senones=40; pseudo_shard_size=200; sweep_ratios=1
  nnet_opts="--preset tiny --num-epochs 2"
  # an untrained tiny network's flat posteriors fill any beam: a narrow search and two LM weights keep decoding in seconds
  gmm_decode_opts="--beam 8 --max-active 500"; nnet_decode_opts="--beam 8 --max-active 500"
  gmm_lm_weights=9:12:3; nnet_lm_weights=1:3:2
fi

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: checking the corpus and lexicon"
  if [ -n "$data_dir" ]; then
    for f in wav.scp text utt2spk; do
      [ -f "$data_dir/$f" ] || { log "no $data_dir/$f: --data-dir must be a Kaldi data dir"; exit 1; }
    done
  elif [ -n "$cuts" ] || [ -n "$recordings" ]; then
    if [ -n "$cuts" ]; then src=(--cuts "$cuts"); else src=(--recordings "$recordings" --supervisions "$supervisions"); fi
    python -m asrkit.bin.lhotse_to_kaldi "${src[@]}" --audio-root "$audio_root" --out-dir data/local/corpus
  else
    log "no corpus: give --data-dir, --cuts, or --recordings and --supervisions (see $0 --help)"; exit 1
  fi
  [ -z "$unlabelled_dir" ] || [ -f "$unlabelled_dir/wav.scp" ] || { log "no $unlabelled_dir/wav.scp"; exit 1; }
  [ "$lexicon_type" != lexicon ] || [ -f "$lexicon" ] || { log "lexicon not found: $lexicon"; exit 1; }
fi
[ -n "$data_dir" ] || data_dir=data/local/corpus

channel_opts=(${channel:+--channel $channel})
if $downmix; then channel_opts+=(--downmix); fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: manifests, validation, speaker-disjoint split ($proportions)"
  python -m asrkit.bin.split_corpus $(forced) --on-error $on_error --corpus-dir "$audio_root" --data-dir "$data_dir" --proportions "$proportions" \
    --seed $seed --sample-rate $sample_rate --out-dir data/manifests --kaldi-view-root data "${channel_opts[@]}"
  if [ -n "$unlabelled_dir" ]; then
    python -m asrkit.bin.prepare_manifests $(forced) --on-error $on_error --data-dir "$unlabelled_dir" --audio-root "$audio_root" --set train_unsup \
      --labelled false --sample-rate $sample_rate --out-dir data/manifests --kaldi-view-dir data/train_unsup "${channel_opts[@]}"
  fi
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
