#!/usr/bin/env bash
# Real read English: speechocean762 (OpenSLR 101), its training split of 125 speakers (2.9 h),
# carved by speaker into train_sup (labelled), train_unsup (unlabelled), dev and test.
#
#   ./run.sh --corpus-dir /path/to/speechocean762     # a local copy (absolute or relative to here)
#   ./run.sh                                          # downloads OpenSLR 101 into download/
set -euo pipefail

stage=0
stop_stage=3
nj=2
seed=762
corpus_dir=            # a local copy of the corpus; empty: download it
download_dir=download
url=https://www.openslr.org/resources/101/speechocean762.tar.gz
lm_order=3
strip_stress=true      # CMU phones without stress digits: fewer phones for 2.9 h of speech

help_message="Usage: $0 [options]
  --stage N / --stop-stage M   run stages N..M (default $stage..$stop_stage)
  --nj K                       parallel jobs (default $nj)
  --corpus-dir DIR             local copy of speechocean762 (holds train/ and resource/); empty: download
  --download-dir DIR           where the download goes (default $download_dir)
  --seed S                     seed of the speaker split (default $seed)
  --lm-order N                 n-gram order of the LM (default $lm_order)
  --strip-stress true|false    drop stress digits from the lexicon's phones (default $strip_stress)"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
. utils/log.sh

sets="train_sup train_unsup dev test"
labelled_sets="train_sup dev test"

if [ -z "$corpus_dir" ]; then
  corpus_dir=$download_dir/speechocean762
fi

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
  python -m asrkit.bin.split_corpus --corpus-dir "$corpus_dir" \
    --seed $seed --on-error skip --out data/manifests --kaldi-view-root data
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: fbank for every set, MFCC for the labelled ones, CMVN from train_sup"
  for set in $sets; do
    python -m asrkit.bin.compute_features --cuts data/manifests/cuts_$set.jsonl.gz \
      --out-dir data/fbank --set $set --kind fbank --num-jobs $nj
  done
  for set in $labelled_sets; do
    python -m asrkit.bin.compute_features --cuts data/manifests/cuts_$set.jsonl.gz \
      --out-dir data/mfcc --set $set --kind mfcc --num-jobs $nj
  done
  python -m asrkit.bin.compute_cmvn --cuts data/fbank/cuts_train_sup.jsonl.gz --out data/cmvn.npz
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: lexicon, data/lang, data/lang_senone, $lm_order-gram LM"
  stress_opts=(--phone-set cmu-stressed)
  $strip_stress && stress_opts=(--strip-stress --phone-set cmu)
  python -m asrkit.bin.prepare_lang --lexicon "$corpus_dir/resource/lexicon.txt" "${stress_opts[@]}" \
    --text data/train_sup/text --out-dir data
  python -m asrkit.bin.train_lm --text data/train_sup/text --order $lm_order \
    --words data/lang/words.txt --dev-text data/dev/text --out-dir data/lm
fi

log "Done: stages $stage..$stop_stage"
