#!/usr/bin/env bash
# utils/decode_data.sh: decode a data set the recipe did not prepare with one of its trained systems (a
# network, or a GMM: mono, tri) or an exported model, as Kaldi's steps/nnet3/decode.sh. Run from a recipe dir (egs/<corpus>/s5):
#
#   utils/decode_data.sh [options] <data> <decode-dir>
#   utils/decode_data.sh --nj 2 --system student_ssl_inter data/test_clean exp/student_ssl_inter/decode_mydata
#   utils/decode_data.sh --model model/ /path/to/kaldi_dir decode_mine
#
# <data> is a Kaldi data dir (wav.scp, utt2spk, optional text/segments) or a lhotse cuts manifest. Stage 0
# validates it with the recipes' rules (bad utterances skipped, counted and named in
# <decode-dir>/validation.txt); stage 1 decodes it in --nj jobs through $cmd, whole speakers per job (fbank
# with the training CMVN and the network, or MFCC with speaker CMN and the GMM; the system's graph at the
# LM weight chosen on dev); stage 2 merges the jobs and, when the
# data has a text file, scores it (wer_<w> with a bootstrap 95% interval, best_wer), as the recipe's own
# decode dirs. Logs in <decode-dir>/log/. The library under it: asrkit/infer/decode_data.py.
set -euo pipefail

nj=1
cmd=
system=
model=
exp_dir=exp
data_dir=
lm_weight=
chunk=
audio_root=
stage=0

help_message="Usage: $0 [options] <data> <decode-dir>
  --system NAME        a system of --exp-dir (teacher, student_sup, student_ssl_inter, ..., mono, tri)
  --model DIR          or an exported model (python -m asrkit.bin.export_model)
  --exp-dir DIR        the recipe's exp/ (default $exp_dir); --data-dir DIR its data/ (default: beside it)
  --nj N               parallel jobs (default $nj)
  --cmd CMD            job runner (default: \$decode_cmd of ./cmd.sh, else utils/run_local.sh)
  --lm-weight W        instead of the weight chosen on the recipe's dev set
  --chunk N            a student's streaming chunk in 30 ms frames (default: the model's, 32)
  --audio-root DIR     root of relative wav.scp paths (default: the current directory)
  --stage N            start at stage N (0 prepare, 1 decode, 2 merge and score)"

if [ -f ./path.sh ]; then . ./path.sh; fi
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi
cmd=${decode_cmd:-utils/run_local.sh}
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

if [ $# -ne 2 ]; then echo "$help_message" >&2; exit 1; fi
data=$1
dir=$2

if [ -n "$system" ] && [ -n "$model" ]; then echo "$0: give --system or --model, not both" >&2; exit 1; fi
if [ -z "$system" ] && [ -z "$model" ]; then echo "$0: give --system or --model" >&2; exit 1; fi
if [ ! -e "$data" ]; then echo "$0: no such data: $data" >&2; exit 1; fi
if [ -n "$model" ] && [ ! -f "$model/model.json" ]; then echo "$0: $model is not an exported model (no model.json)" >&2; exit 1; fi
if [ -n "$system" ] && [ ! -f "$exp_dir/$system/best.pt" ] && [ ! -f "$exp_dir/$system/final.mdl" ]; then
  echo "$0: no trained system $exp_dir/$system (best.pt or final.mdl)" >&2; exit 1
fi

src=(--model "$model")
if [ -n "$system" ]; then src=(--system "$system" --exp-dir "$exp_dir" ${data_dir:+--data-dir "$data_dir"}); fi
opts=(${lm_weight:+--lm-weight "$lm_weight"} ${chunk:+--chunk "$chunk"})

mkdir -p "$dir/log"
if [ $stage -le 0 ]; then
  python -m asrkit.bin.decode_data --step prepare --data "$data" --out-dir "$dir" ${audio_root:+--audio-root "$audio_root"} \
    2> "$dir/log/prepare.log" || { tail -n 20 "$dir/log/prepare.log" >&2; exit 1; }
fi
if [ $stage -le 1 ]; then
  $cmd JOB=1:$nj "$dir/log/decode.JOB.log" \
    python -m asrkit.bin.decode_data --step decode "${src[@]}" "${opts[@]}" --out-dir "$dir" --job JOB --nj $nj
fi
if [ $stage -le 2 ]; then
  python -m asrkit.bin.decode_data --step merge --out-dir "$dir" --nj $nj > "$dir/log/merge.log" 2>&1 \
    || { tail -n 20 "$dir/log/merge.log" >&2; exit 1; }
  if [ -f "$dir/best_wer" ]; then cat "$dir/best_wer"; fi
  echo "$0: decoded $data into $dir (summary: $dir/summary.json, hypotheses: $dir/hyp.txt)"
fi
