"""Build HCLG (Kaldi's mkgraph.sh) into a graph dir.

  python -m asrkit.bin.make_graph --lang data/lang_senone --lm data/lm/G.fst \
      --model exp/senone/final.mdl --out-dir exp/senone/graph
  python -m asrkit.bin.make_graph --lang data/lang --lm data/lm/G.fst --tree exp/tri/tree --out-dir ...
  python -m asrkit.bin.make_graph --lang data/lang --lm data/lm/G.fst --out-dir exp/mono/graph  # stand-in tree

--model: a torch.save dict {"transition_model", "tree", ...} (asrkit.hmm.model); --tree: a Kaldi
binary tree, with the lang dir's topo (or --topo); neither: a monophone stand-in tree from the topo.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asrkit.utils.cli import add_out_dir
from asrkit.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lang", required=True, help="Kaldi lang dir (phones.txt, words.txt, L_disambig.fst, topo)")
    p.add_argument("--lm", required=True, help="G.fst (kaldifst binary, over the lang dir's words.txt)")
    p.add_argument("--model", default=None, help="stored model (torch.save dict with transition_model, tree)")
    p.add_argument("--tree", default=None, help="Kaldi binary tree (with --topo or the lang's topo)")
    p.add_argument("--topo", default=None, help="topology (default: <lang>/topo)")
    add_out_dir(p, "graph dir to write (e.g. exp/x/graph)")
    p.add_argument("--transition-scale", type=float, default=1.0)
    p.add_argument("--self-loop-scale", type=float, default=0.1)
    p.add_argument("--max-states", type=int, default=-1, help="abort determinization beyond this")
    p.add_argument("--no-minimize", action="store_true")
    p.add_argument("--force", action="store_true", help="rebuild even if an up-to-date graph is there")
    p.add_argument("--verbose", action="store_true")
    return p


def main(argv=None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    setup_logging(a.verbose)
    from asrkit.graph.hclg import EmptyGraphError, HclgConfig, make_graph_dir
    from asrkit.hmm import load_any_model

    from asrkit.utils.atomic import up_to_date

    if not a.force and up_to_date(a.out_dir, [Path(a.lang) / "L_disambig.fst", a.lm, a.model, a.tree, a.topo]):
        logging.info("%s is up to date (as mkgraph.sh: newer than its inputs); --force rebuilds it", a.out_dir)
        return 0
    topo = a.topo or (str(Path(a.lang) / "topo") if a.model is None else None)
    try:
        model, desc = load_any_model(a.model, a.tree, topo)
        cfg = HclgConfig(transition_scale=a.transition_scale, self_loop_scale=a.self_loop_scale,
                         max_states=a.max_states, minimize=not a.no_minimize)
        info = make_graph_dir(a.lang, a.lm, model, a.out_dir, cfg, desc)
    except (EmptyGraphError, FileNotFoundError, ValueError, RuntimeError) as e:
        logging.error("make_graph failed: %s", e)
        return 1
    print(f"HCLG {a.out_dir}/HCLG.fst: {info.states} states, {info.arcs} arcs, {info.build_seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
