#!/usr/bin/env python3
"""Stage 3 of egs/librispeech/s5: the LM training text from LibriSpeech's LM corpus (OpenSLR 11,
librispeech-lm-norm.txt.gz, about 40 M sentences), at most --max-sentences of them (evenly spaced),
as plain text. The n-gram trainer holds its text in memory: 1 M sentences take about 1.5 GB.
With --vocab-out, also the --vocab-size most frequent words of that sample, one a line (the lexicon's
vocabulary when no word list is given: LibriSpeech's own librispeech-vocab.txt is the 200,000 most
frequent words of the whole LM corpus).

Example: local/prepare_lm_text.py --in librispeech-lm-norm.txt.gz --max-sentences 1000000 \
             --out data/local/lm_text.txt --vocab-out data/local/lm_vocab.txt --vocab-size 200000
"""
import argparse
import gzip
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from asrkit.utils.atomic import atomic_path, is_done, mark_done
from asrkit.utils.logging import setup_logging

log = logging.getLogger("prepare_lm_text")


def open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="inp", required=True, help="LM text, plain or .gz, one sentence a line")
    p.add_argument("--out", required=True)
    p.add_argument("--max-sentences", type=int, default=1000000, help="0: all")
    p.add_argument("--vocab-out", default=None, help="write the most frequent words of the sample here")
    p.add_argument("--vocab-size", type=int, default=200000)
    a = p.parse_args(argv)
    setup_logging(False)
    src, out = Path(a.inp), Path(a.out)
    vocab_out = Path(a.vocab_out) if a.vocab_out else None
    if is_done(out) and (vocab_out is None or is_done(vocab_out)):
        log.info("%s is done: skipping", out)
        return 0
    if not src.is_file():
        log.error("LM text not found: %s", src)
        return 1
    t0 = time.time()
    with open_text(src) as f:
        total = sum(1 for line in f if line.strip())
    if total == 0:
        log.error("%s holds no sentences", src)
        return 1
    step = max(1, total // a.max_sentences) if a.max_sentences > 0 else 1
    kept = 0
    counts = Counter()
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as w, open_text(src) as f:
        i = 0
        for line in f:
            if not line.strip():
                continue
            if i % step == 0 and (a.max_sentences <= 0 or kept < a.max_sentences):
                words = line.upper().split()
                w.write(" ".join(words) + "\n")
                counts.update(words)
                kept += 1
            i += 1
    mark_done(out)
    if vocab_out is not None:
        with atomic_path(vocab_out) as tmp:
            tmp.write_text("".join(w + "\n" for w, _ in counts.most_common(a.vocab_size)), encoding="utf-8")
        mark_done(vocab_out)
        log.info("%s: %d of %d word types", vocab_out, min(a.vocab_size, len(counts)), len(counts))
    log.info("%s: %d of %d sentences of %s (every %d-th) in %.1f s", out, kept, total, src, step, time.time() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
