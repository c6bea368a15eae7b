"""Forced alignment with a trained GMM system (Kaldi's steps/align_si.sh), optionally scored against a true
phone segmentation.

  python -m asrkit.bin.align_gmm --model exp/tri/final.mdl --cuts data/mfcc/cuts_train_sup.jsonl.gz \
      --lang data/lang --out exp/tri_ali/ali.pt --nj 2 [--ctm corpus/data/train_sup/phones.ctm]

Writes ``ali.pt`` ({"alis": utt -> int32 transition ids, "phones": utt -> int32 phone ids per frame,
"failed": utt -> reason, "frame_shift": 0.01, "model": path}) and ``failed.txt`` beside it. With --ctm
(or cuts whose supervisions carry ``alignment["phone"]``) it reports the share of phone starts within
20 / 50 ms of the truth, and writes ``boundaries.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.align_gmm")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="final.mdl of a GMM system")
    p.add_argument("--cuts", required=True)
    p.add_argument("--lang", required=True)
    p.add_argument("--out", required=True, help="alignment file to write (ali.pt)")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--beam", type=float, default=10.0)
    p.add_argument("--retry-beam", type=float, default=40.0)
    p.add_argument("--boost-silence", type=float, default=1.0)
    p.add_argument("--cmn", choices=["speaker", "utt", "none"], default="speaker")
    p.add_argument("--ctm", default=None, help="true phone segmentation (<utt> 1 <start> <dur> <phone>)")
    p.add_argument("--force", action="store_true", help="align even if --out is up to date")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    for path, what in ((a.model, "--model"), (a.cuts, "--cuts"), (a.lang, "--lang")):
        if not Path(path).exists():
            p.error(f"{what} {path} does not exist")

    from asrkit.utils.atomic import atomic_write_text, mark_done, up_to_date

    if not a.force and up_to_date(a.out, [a.model, a.cuts, a.ctm]):
        log.info("%s is up to date (newer than the model and the cuts); --force realigns", a.out)
        return 0
    from asrkit.gmm import (AlignOptions, FeatConfig, GmmModel, LangInfo, align_corpus, corpus_boundaries,
                            load_corpus, read_ctm, save_alignments)

    model = GmmModel.load(a.model)
    lang = LangInfo.read(a.lang)
    corpus = load_corpus(a.cuts, FeatConfig(cmn=a.cmn))
    res = align_corpus(model, corpus, lang, AlignOptions(beam=a.beam, retry_beam=a.retry_beam,
                                                         boost_silence=a.boost_silence), nj=a.nj)
    out = Path(a.out)
    save_alignments(out, model, res.alis, res.failed, str(a.model))
    atomic_write_text(out.parent / "failed.txt", "".join(f"{u} {r}\n" for u, r in sorted(res.failed.items())))
    log.info("aligned %d utterances (%d frames) in %.2f s, %.0f frames/s; %d retried with beam %g, %d failed",
             len(res.alis), res.frames, res.seconds, res.frames / max(res.seconds, 1e-9), len(res.retried),
             a.retry_beam, len(res.failed))
    refs = read_ctm(a.ctm) if a.ctm else corpus.ref_phones
    if refs:
        id2phone = {i: s for s, i in lang.phones.items()}
        sil_names = {id2phone[i] for i in lang.silence if i in id2phone}
        st = corpus_boundaries(res.alis, refs, model.info, id2phone, skip=lang.silence, ref_skip=sil_names)
        log.info("boundaries: %s", st)
        atomic_write_text(out.parent / "boundaries.json", json.dumps(st.summary(), indent=1) + "\n")
        print(st)
    mark_done(out)  # last: a killed run leaves no marker and is redone
    return 0


if __name__ == "__main__":
    sys.exit(main())
