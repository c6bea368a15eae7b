"""Train a monophone or triphone GMM-HMM system at 10 ms (MFCC + deltas, per-speaker CMN).

  # stage 4: monophone system from a flat start
  python -m asrkit.bin.train_gmm --type mono --cuts data/mfcc/cuts_train_sup.jsonl.gz --lang data/lang \
      --out-dir exp/mono --num-iters 40 --num-gauss 1000 --nj 2
  # stage 5: triphone system from the monophone alignments
  python -m asrkit.bin.train_gmm --type tri --cuts data/mfcc/cuts_train_sup.jsonl.gz --lang data/lang \
      --ali-dir exp/mono --out-dir exp/tri --num-leaves 2000 --num-gauss 10000 --nj 2
  # either, then decode a set (HCLG built from --G with asrkit.graph; WER against the cuts' text)
      ... --decode-cuts data/mfcc/cuts_dev.jsonl.gz --G data/lm/G.fst

Writes <out-dir>/{0..N}.mdl, final.mdl (+ .final.mdl.done), ali.pt (final alignments of every utterance:
transition ids and per-frame phones), failed.txt, history.json (per iteration: frames, log-like/frame,
Gaussians, failed/retried alignments, seconds); for tri also tree (Kaldi binary) and tree_stats.npz; with
--decode-cuts graph/ and decode_<name>/ (hyp.txt, wer, summary.json). A re-run resumes from the last
complete iteration; a finished system is kept unless --force.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard, options_of
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.train_gmm")


@releases_claims
def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--type", choices=["mono", "tri"], required=True)
    p.add_argument("--cuts", required=True, help="lhotse cuts with stored 13-dim MFCC and transcripts")
    p.add_argument("--lang", required=True, help="Kaldi lang dir (three-state topology)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--ali-dir", default=None, help="tri: the system whose final.mdl + ali.pt to start from")
    p.add_argument("--num-leaves", type=int, default=2000, help="tri: maximum tree leaves")
    p.add_argument("--num-gauss", type=int, default=None, help="total Gaussians (mono 1000, tri 10000)")
    p.add_argument("--num-iters", type=int, default=None, help="EM iterations (mono 40, tri 35)")
    p.add_argument("--realign-iters", default=None, help="space/comma separated (default: Kaldi's schedules)")
    p.add_argument("--boost-silence", type=float, default=1.25)
    p.add_argument("--cmn", choices=["speaker", "utt", "none"], default="speaker")
    p.add_argument("--tree-thresh", type=float, default=300.0)
    p.add_argument("--tree-min-count", type=float, default=100.0)
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="retrain even if final.mdl is done")
    p.add_argument("--decode-cuts", default=None, help="decode this set with the final model")
    p.add_argument("--G", default=None, help="G.fst for decoding (with --decode-cuts)")
    p.add_argument("--decode-name", default=None, help="decode_<name> (default: from the cuts file name)")
    p.add_argument("--lm-weights", default="7:17:2", help="LM weights to sweep (acoustic scale 1/w)")
    p.add_argument("--acoustic-scale", type=float, default=0.083333)
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    for path, what in ((a.cuts, "--cuts"), (a.lang, "--lang")):
        if not Path(path).exists():
            p.error(f"{what} {path} does not exist")
    if a.type == "tri" and not a.ali_dir:
        p.error("--type tri needs --ali-dir (the monophone system)")
    if a.decode_cuts and not a.G:
        p.error("--decode-cuts needs --G")

    claim_output(a.out_dir, "train_gmm")
    ali = Path(a.ali_dir) if a.ali_dir else None
    try:
        g = guard(f"the {a.type} GMM in {a.out_dir}", [Path(a.out_dir) / "final.mdl"], fingerprint(
            options_of(a, drop=("out_dir", "decode_cuts", "G", "decode_name", "lm_weights", "acoustic_scale", "beam")),
            {"cuts": a.cuts, "lang": a.lang, "ali_model": ali and ali / "final.mdl", "ali": ali and ali / "ali.pt"}),
            force=a.force)
    except StaleOutputError as e:
        log.error("%s", e)
        return 1
    from asrkit.gmm import (FeatConfig, MonoConfig, TriConfig, load_corpus, train_mono, train_tri)
    from asrkit.gmm.graphs import LangInfo

    realign = None
    if a.realign_iters:
        realign = [int(x) for x in a.realign_iters.replace(",", " ").split()]
    lang = LangInfo.read(a.lang)
    corpus = load_corpus(a.cuts, FeatConfig(cmn=a.cmn))
    log.info("%d utterances, %d frames from %s", len(corpus.feats), corpus.num_frames, a.cuts)
    if a.type == "mono":
        cfg = MonoConfig(num_iters=a.num_iters or 40, tot_gauss=a.num_gauss or 1000, boost_silence=a.boost_silence,
                         realign_iters=realign, nj=a.nj, seed=a.seed, force=a.force)
        model = train_mono(corpus, lang, a.out_dir, cfg)
    else:
        cfg = TriConfig(num_leaves=a.num_leaves, tot_gauss=a.num_gauss or 10000, num_iters=a.num_iters or 35,
                        realign_iters=realign, boost_silence=a.boost_silence, tree_thresh=a.tree_thresh,
                        tree_min_count=a.tree_min_count, nj=a.nj, seed=a.seed, force=a.force)
        model = train_tri(corpus, lang, a.out_dir, a.ali_dir, cfg)
    g.stamp()
    hist = model.meta.get("history", [])
    if hist:
        log.info("log-like/frame by iteration: %s", " ".join(f"{h['iter']}:{h['loglike_per_frame']:.3f}"
                                                               for h in hist))
    log.info("final model: %s", model.summary())
    if a.decode_cuts:
        from asrkit.gmm.decode import best_wer_line, decode_gmm, make_graph

        out = Path(a.out_dir)
        graph = make_graph(model, a.lang, a.G, out / "graph")
        dev = load_corpus(a.decode_cuts, FeatConfig(cmn=a.cmn), need_text=False)
        name = a.decode_name or Path(a.decode_cuts).name.split(".")[0].replace("cuts_", "")
        refs = {u: w for u, w in dev.text.items() if w}
        decode_gmm(model, graph, dev.feats, refs, out / f"decode_{name}", a.lm_weights, beam=a.beam, nj=a.nj)
        print(best_wer_line(out / f"decode_{name}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
