"""Stage 6: senone tree at 30 ms (one-state topology), per-frame senone targets on the fbank cuts, priors,
senone HCLG.

  python -m asrkit.bin.make_senones --ali-dir exp/tri --lang data/lang_senone --lang-gmm data/lang \
      --mfcc-dir data/mfcc --fbank-dir data/fbank --cmvn data/cmvn.npz --sets train_sup,dev \
      --num-leaves 3000 --G data/lm/G.fst --out-dir exp/senone --nj 2

Writes <out-dir>/tree (Kaldi binary), final.mdl (asrkit-hmm-v1: one-state TransitionModel + tree),
tree_stats.npz, questions.int, build.json, targets/<set>/ (int16 .npy, NumpyFilesWriter),
cuts_<set>.jsonl.gz (fbank cuts + custom field "senones", T = ceil(n/3) ids each), left_out_<set>.txt
(cut id and reason: no transcript, words missing from the lexicon, failed alignment), ali_<set>.pt
(10 ms alignments of sets other than the GMM's training set, aligned here), senone_counts.npy (raw
float64 frame counts over the training set: the priors), occupancy.txt, graph/ (HCLG), summary.json.
Outputs with a done marker are skipped on a re-run; --force rebuilds the tree and everything after it.

--text-from SET=[FEATSET:]MANIFEST makes targets for SET from the fbank/MFCC cuts of FEATSET (default
SET) with the transcripts of MANIFEST, aligned here with the GMM; the oracle targets of the unlabelled
set (read by stage 13 only):
  --sets train_sup,dev,train_unsup_oracle \
  --text-from train_unsup_oracle=train_unsup:data/manifests/oracle/cuts_train_unsup.jsonl.gz
The speed-perturbed copies of train_sup (asrkit.bin.perturb_speed, a recipe's --speed-perturb) are sets like
dev here, aligned with the GMM: --sets train_sup,dev,train_sup_sp0.9,train_sup_sp1.1.
See asrkit/senone/stage.py for the choices (tree features, phone boundaries at 30 ms, priors).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.utils.dirlock import claim_output, releases_claims
from asrkit.utils.fingerprint import StaleOutputError, fingerprint, guard
from asrkit.utils.logging import setup_logging

log = logging.getLogger("asrkit.bin.make_senones")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m asrkit.bin.make_senones", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ali-dir", required=True, help="triphone GMM system: final.mdl + ali.pt (exp/tri)")
    p.add_argument("--lang", required=True, help="one-state lang dir (data/lang_senone)")
    p.add_argument("--lang-gmm", required=True, help="the GMM's lang dir (data/lang), for aligning other sets")
    p.add_argument("--mfcc-dir", required=True, help="data/mfcc (cuts_<set>.jsonl.gz)")
    p.add_argument("--fbank-dir", required=True, help="data/fbank (cuts_<set>.jsonl.gz)")
    p.add_argument("--cmvn", default=None, help="data/cmvn.npz (needed with --tree-feats fbank)")
    p.add_argument("--sets", default="train_sup,dev", help="comma-separated labelled sets (default train_sup,dev)")
    p.add_argument("--train-set", default="train_sup", help="the set of <ali-dir>/ali.pt: tree and priors")
    p.add_argument("--num-leaves", type=int, default=3000, help="maximum senones (default 3000)")
    p.add_argument("--tree-thresh", type=float, default=300.0, help="minimum likelihood gain of a split")
    p.add_argument("--tree-min-count", type=float, default=100.0, help="minimum 30 ms frames a side of a split")
    p.add_argument("--cluster-thresh", type=float, default=-1.0, help="-1: smallest split gain; 0: none")
    p.add_argument("--tree-feats", choices=["mfcc", "fbank"], default="mfcc",
                   help="features of the tree statistics (default mfcc: the GMM's, as Kaldi's chain recipes)")
    p.add_argument("--cmn", choices=["speaker", "utt", "none"], default="speaker", help="MFCC CMN of the GMM")
    p.add_argument("--keep-oov", action="store_true",
                   help="keep cuts with words missing from the lexicon (default: leave them out)")
    p.add_argument("--beam", type=float, default=10.0, help="alignment beam (sets aligned here)")
    p.add_argument("--retry-beam", type=float, default=160.0,
                   help="retry beam of the sets aligned here (default 160: their speakers are unseen by the GMM)")
    p.add_argument("--boost-silence", type=float, default=1.0)
    p.add_argument("--text-from", action="append", default=[], metavar="SET=[FEATSET:]MANIFEST",
                   help="SET's features are FEATSET's (default SET), its text MANIFEST's supervisions (repeatable)")
    p.add_argument("--G", default=None, help="G.fst for the senone HCLG (omit to skip the graph)")
    p.add_argument("--out-dir", required=True, help="exp/senone")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rebuild the tree and everything after it")
    p.add_argument("--verbose", action="store_true")
    return p


@releases_claims
def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    for path, what in ((a.ali_dir, "--ali-dir"), (a.lang, "--lang"), (a.lang_gmm, "--lang-gmm"),
                       (a.mfcc_dir, "--mfcc-dir"), (a.fbank_dir, "--fbank-dir")):
        if not Path(path).exists():
            p.error(f"{what} {path} does not exist")
    if a.tree_feats == "fbank" and not a.cmvn:
        p.error("--tree-feats fbank needs --cmvn")
    # here, after the argument checks: --help and usage errors answer without loading lhotse/torch/FSTs
    from asrkit.senone import SenoneConfig, make_senones

    text_from = {}
    for spec in a.text_from:
        name, eq, rest = spec.partition("=")
        feat, colon, manifest = rest.partition(":")
        if not colon or "/" in feat or not feat:  # no FEATSET: part (a path may hold ':' after a '/')
            feat, manifest = name, rest
        if not eq or not name or not manifest:
            p.error(f"--text-from wants SET=[FEATSET:]MANIFEST, got {spec!r}")
        if not Path(manifest).exists():
            p.error(f"--text-from {spec}: {manifest} does not exist")
        text_from[name] = (feat, manifest)

    cfg = SenoneConfig(num_leaves=a.num_leaves, thresh=a.tree_thresh, min_count=a.tree_min_count,
                       cluster_thresh=a.cluster_thresh, tree_feats=a.tree_feats, cmn=a.cmn, train_set=a.train_set,
                       keep_oov=a.keep_oov, beam=a.beam, retry_beam=a.retry_beam, boost_silence=a.boost_silence,
                       nj=a.nj, seed=a.seed, force=a.force, text_from=text_from)
    claim_output(a.out_dir, "make_senones")
    # The tree and what follows it come from the GMM system, the lang dirs and the training set's
    # features; --sets and --text-from only add sets (stage 13 adds the oracle's), so they are left out.
    tree_opts = {k: getattr(a, k) for k in ("train_set", "num_leaves", "tree_thresh", "tree_min_count",
                                            "cluster_thresh", "tree_feats", "cmn", "seed")}
    ali = Path(a.ali_dir)
    tree_inputs = {"ali_model": ali / "final.mdl", "ali": ali / "ali.pt", "lang": a.lang, "lang_gmm": a.lang_gmm,
                   "train_cuts": Path(a.mfcc_dir) / f"cuts_{a.train_set}.jsonl.gz", "cmvn": a.cmvn}
    try:
        g = guard(f"the senone tree in {a.out_dir}", [Path(a.out_dir) / "final.mdl"],
                  fingerprint(tree_opts, tree_inputs), force=a.force)
    except StaleOutputError as e:
        logging.error("%s", e)
        return 1
    try:
        s = make_senones(ali_dir=a.ali_dir, lang=a.lang, lang_gmm=a.lang_gmm, mfcc_dir=a.mfcc_dir,
                         fbank_dir=a.fbank_dir, cmvn=a.cmvn, sets=[x for x in a.sets.split(",") if x], G=a.G,
                         out_dir=a.out_dir, config=cfg)
        g.stamp()
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        logging.error("make_senones failed: %s", e)
        return 1
    print(f"senones {s.num_senones} ({a.out_dir}); "
          + "; ".join(f"{k}: {v['cuts']} cuts, {v['frames']} frames, {v['left_out']} left out" for k, v in s.sets.items())
          + f"; {s.seconds.get('total', 0):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
