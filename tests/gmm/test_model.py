"""GmmModel files: the asrkit-hmm-v1 format with "am", "topo" and "meta", and clear refusals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from asrkit.gmm.model import GmmModel, init_mono
from asrkit.hmm import load_model, make_gmm_topo, save_model, standin_model, tree_to_bytes

TOPO = make_gmm_topo([3, 4, 5], [1, 2])


def test_save_load_round_trip(tmp_path):
    m = init_mono(TOPO, np.arange(4.0), np.ones(4), shared_phones=[[1, 2], [3], [4], [5]])
    m.meta["iter"] = 0
    path = m.save(tmp_path / "exp" / "0.mdl")
    assert list(torch.load(path, weights_only=False)) == ["format", "transition_model", "tree", "am", "topo", "meta"]
    back = GmmModel.load(path)
    assert (back.topo_text, back.meta, back.num_pdfs, back.num_gauss, back.dim) == (TOPO, {"type": "mono", "iter": 0},
                                                                                    12, 12, 4)
    assert tree_to_bytes(back.tree) == tree_to_bytes(m.tree)
    assert np.array_equal(back.am.get_pdf(3).means_invvars, m.am.get_pdf(3).means_invvars)
    assert np.array_equal(back.info.pdf, m.info.pdf)
    hm = load_model(path)  # what make_graph --model reads
    assert hm.extra["format"] == "asrkit-hmm-v1" and int(hm.transition_model.num_pdfs) == 12


def test_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match="GMM model not found"):
        GmmModel.load(tmp_path / "none.mdl")
    m = standin_model(TOPO)
    save_model(tmp_path / "senone.mdl", m.transition_model, m.tree)
    with pytest.raises(ValueError, match="senone.mdl: not a GMM model"):
        GmmModel.load(tmp_path / "senone.mdl")
