"""A toy recipe layout (``exp/`` and ``data/`` as the recipes write them) with random networks, for tests
of asrkit.infer without training anything: :mod:`asrkit.testing.lang`'s lexicon and grammar (yes / no /
nope), a monophone senone tree of the one-state topology, a random unidirectional student and
bidirectional teacher.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from asrkit.features.cmvn import CmvnStats
from asrkit.graph.hclg import make_graph_dir
from asrkit.hmm import save_model, tree_to_bytes
from asrkit.nnet.checkpoint import FORMAT
from asrkit.nnet.models import ModelConfig, build_model
from asrkit.testing.lang import (TOY_LEXICON, TOY_SENTENCES, make_toy_dict, write_toy_lang_dir,
                                 write_toy_sentence_grammar)
from asrkit.testing.oracle import make_toy_model


def write_random_network(path: Path, num_senones: int, bidirectional: bool, seed: int) -> None:
    torch.manual_seed(seed)
    cfg = ModelConfig(input_dim=192, num_senones=num_senones, num_layers=2, hidden_size=16,
                      bidirectional=bidirectional)
    model = build_model(cfg)
    with torch.no_grad():  # sharper outputs than the default init: hypotheses that change with the input
        model.output.weight.mul_(30.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "model_config": cfg.to_dict(), "model": model.state_dict(), "step": 1}, path)


def _decode_dir(d: Path, weight: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "best_wer").write_text(f"%WER 50.00 [ 1 / 2, 0 ins, 0 del, 1 sub ] {d}/wer_{weight}\n")
    (d / "summary.json").write_text(json.dumps({"config": {"beam": 10.0, "max_active": 2000, "min_active": 200,
                                                           "allow_partial": True}}))


def write_toy_recipe(root: Path) -> Path:
    data, exp = root / "data", root / "exp"
    lang = write_toy_lang_dir(data / "lang_senone", TOY_LEXICON, num_states=1)
    g = write_toy_sentence_grammar(lang, TOY_SENTENCES, data / "G.fst")
    model = make_toy_model(lang)
    senone = exp / "senone"
    senone.mkdir(parents=True)
    save_model(senone / "final.mdl", model.transition_model, model.tree)
    (senone / "tree").write_bytes(tree_to_bytes(model.tree))
    make_graph_dir(lang, g, model, senone / "graph")
    num_pdfs = int(model.transition_model.num_pdfs)
    np.save(senone / "senone_counts.npy", np.arange(1, num_pdfs + 1, dtype=np.float64))
    rng = np.random.default_rng(0)
    mean = rng.uniform(-8, 0, 64)
    CmvnStats(1000.0, mean * 1000, (mean ** 2 + 4.0) * 1000).save(data / "cmvn.npz")
    make_toy_dict(TOY_LEXICON).write(data / "local" / "dict")
    write_random_network(exp / "student" / "best.pt", num_pdfs, False, 1)
    write_random_network(exp / "teacher" / "best.pt", num_pdfs, True, 2)
    _decode_dir(exp / "student" / "decode_dev", 3)
    _decode_dir(exp / "teacher" / "decode_dev", 4)
    return root
