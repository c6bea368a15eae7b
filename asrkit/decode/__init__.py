"""Decoding of per-frame pdf scores with HCLG graphs, and WER/SER scoring (Kaldi formats)."""
from asrkit.decode.decoder import (DecodeConfig, DecodeSummary, Graph, UttResult, decode_set,
                                   decode_utterance, iter_scores, read_log_priors, with_priors,
                                   write_decode_dir)
from asrkit.decode.score import (WerResult, compute_wer, format_per_utt, make_normalizer, read_best_weight,
                                 read_text, score_files, write_best_wer, write_wer_files)
from asrkit.decode.sweep import parse_weights, sweep

__all__ = ["DecodeConfig", "DecodeSummary", "Graph", "UttResult", "decode_set", "decode_utterance",
           "iter_scores", "read_log_priors", "with_priors", "write_decode_dir", "WerResult", "compute_wer",
           "format_per_utt", "make_normalizer", "read_best_weight", "read_text", "score_files",
           "write_best_wer", "write_wer_files", "parse_weights", "sweep"]
