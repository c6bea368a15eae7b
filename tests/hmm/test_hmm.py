"""asrkit.hmm on hand-made topologies: topology text and files, tree bytes, transition lookups, model files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from asrkit.fst import kaldi_hmm_gmm
from asrkit.hmm import (MODEL_FORMAT, TransitionInfo, load_any_model, load_model, make_gmm_topo, monophone_tree,
                        read_topo, read_tree, save_model, standin_model, transition_arrays, tree_from_bytes,
                        tree_to_bytes, widen_monophone_tree, write_tree)

TOPO = make_gmm_topo([3, 4, 5], [1, 2])


def test_read_topo_from_text_and_file(tmp_path):
    (tmp_path / "topo").write_text(TOPO)
    for src in (TOPO, tmp_path / "topo", str(tmp_path / "topo")):
        topo = read_topo(src)
        assert list(topo.phones) == [1, 2, 3, 4, 5]
        assert all(int(topo.get_phone_to_num_pdf_classes()[p]) == 3 for p in topo.phones)
    with pytest.raises(Exception):
        read_topo("<Topology> nonsense")
    with pytest.raises(FileNotFoundError):
        read_topo(tmp_path / "missing")


def test_tree_bytes_and_files(tmp_path):
    topo = read_topo(TOPO)
    tree = monophone_tree(topo)
    ref = kaldi_hmm_gmm.monophone_context_dependency(topo.phones, topo.get_phone_to_num_pdf_classes())
    assert tree_to_bytes(tree) == tree_to_bytes(ref)
    data = tree_to_bytes(tree)
    assert data.startswith(b"\x00BContextDependency ")
    assert tree_to_bytes(tree_from_bytes(data)) == data == tree_to_bytes(tree_from_bytes(data[2:]))
    write_tree(tree, tmp_path / "exp" / "tree")
    assert (tmp_path / "exp" / "tree").read_bytes() == data
    back = read_tree(tmp_path / "exp" / "tree")
    assert (back.context_width, back.central_position, back.num_pdfs) == (1, 0, 15)
    kaldi_written = tmp_path / "tree.kaldi"
    tree.write(True, str(kaldi_written))
    assert kaldi_written.read_bytes() == data  # the bytes Kaldi itself writes
    (tmp_path / "text_tree").write_text("ContextDependency 1 0 ToPdf TE 0 6 ( NULL )\n")
    with pytest.raises(ValueError, match="text_tree: not a binary Kaldi ContextDependency"):
        read_tree(tmp_path / "text_tree")
    (tmp_path / "cut_tree").write_bytes(data[:-30])
    with pytest.raises(ValueError, match="cut_tree: a corrupt binary Kaldi tree"):
        read_tree(tmp_path / "cut_tree")


def test_shared_and_widened_monophone_trees():
    topo = read_topo(TOPO)
    shared = monophone_tree(topo, [[1, 2], [3], [4], [5]])
    assert shared.num_pdfs == 12
    assert shared.compute([1], 2) == shared.compute([2], 2)
    wide = widen_monophone_tree(monophone_tree(topo), 3, 1)
    assert (wide.context_width, wide.central_position) == (3, 1)
    assert wide.compute([5, 3, 1], 1) == wide.compute([0, 3, 0], 1) == monophone_tree(topo).compute([3], 1)
    with pytest.raises(ValueError, match="monophone"):
        widen_monophone_tree(wide)


def test_transition_lookups_agree_with_the_transition_model():
    tm = standin_model(TOPO).transition_model
    info = TransitionInfo.from_model(tm)
    arrays = transition_arrays(tm)
    n = int(tm.num_transition_ids)
    assert arrays["tid2pdf"].dtype == np.int32 and arrays["tid2phone"].dtype == np.int32
    assert arrays["tid2pdf"][0] == -1 and arrays["tid2phone"][0] == 0 and not arrays["is_self_loop"][0]
    pdfs = np.asarray(tm.transition_id_to_pdf_array())
    for t in range(1, n + 1):
        assert arrays["tid2phone"][t] == info.phone[t] == tm.transition_id_to_phone(t)
        assert arrays["is_self_loop"][t] == info.is_self_loop[t] == tm.is_self_loop(t)
        assert arrays["tid2pdf"][t] == info.pdf[t] == pdfs[t]
    assert int(arrays["num_pdfs"]) == info.num_pdfs == 15
    # a phone begins where the HMM state is 0 and the transition is not a self-loop
    fwd0 = next(t for t in range(1, n + 1) if info.hmm_state[t] == 0 and not info.is_self_loop[t])
    loop0 = next(t for t in range(1, n + 1) if info.hmm_state[t] == 0 and info.is_self_loop[t])
    assert info.phone_starts(np.array([fwd0, loop0, fwd0])).tolist() == [True, False, True]


def test_model_file_format(tmp_path):
    m = standin_model(TOPO)
    path = save_model(tmp_path / "m" / "final.mdl", m.transition_model, m.tree, am="AM", topo=TOPO, meta={"a": 1})
    raw = torch.load(path, weights_only=False)
    assert list(raw) == ["format", "transition_model", "tree", "am", "topo", "meta"]
    assert raw["format"] == MODEL_FORMAT == "asrkit-hmm-v1"
    back = load_model(path)
    assert tree_to_bytes(back.tree) == tree_to_bytes(m.tree)
    assert back.extra == {"format": MODEL_FORMAT, "am": "AM", "topo": TOPO, "meta": {"a": 1}}
    # the other spellings of the keys, and a tree stored as bytes
    torch.save({"tm": m.transition_model, "ctx_dep": tree_to_bytes(m.tree)}, tmp_path / "other.mdl")
    assert tree_to_bytes(load_model(tmp_path / "other.mdl").tree) == tree_to_bytes(m.tree)
    with pytest.raises(FileNotFoundError, match="GMM model not found"):
        load_model(tmp_path / "none.mdl", what="GMM model")
    torch.save({"tree": m.tree}, tmp_path / "bad.mdl")
    with pytest.raises(ValueError, match="bad.mdl: a model must hold 'transition_model' and 'tree'"):
        load_model(tmp_path / "bad.mdl")
    (tmp_path / "topo").write_text(TOPO)
    write_tree(m.tree, tmp_path / "tree")
    for kw, desc in [({"model": path}, "model"), ({"tree": tmp_path / "tree", "topo": tmp_path / "topo"}, "tree"),
                     ({"topo": tmp_path / "topo"}, "stand-in")]:
        got, what = load_any_model(**kw)
        assert what.startswith(desc) and int(got.transition_model.num_pdfs) == 15
    with pytest.raises(ValueError, match="give --model"):
        load_any_model()
