"""Export of a recipe's system into a model directory, and the loader's refusals, each naming the piece."""
import json
import shutil

import numpy as np
import pytest

from asrkit.infer.model_dir import MANIFEST, NNET_PIECES, ModelDirError, export_model, load_model_dir, sha256


def test_export_writes_every_piece_with_checksums(toy_models):
    d = toy_models["student"]
    m = json.loads((d / MANIFEST).read_text())
    assert set(m["files"]) == set(NNET_PIECES)
    for name, meta in m["files"].items():
        assert sha256(d / name) == meta["sha256"], name
    assert m["decode"]["lm_weight"] == 3.0 and m["decode"]["beam"] == 10.0 and m["decode"]["chunk"] == 32
    assert m["network"]["streaming"] is True and m["frontend"]["stack"] == 3
    assert m["asrkit_version"]
    t = json.loads((toy_models["teacher"] / MANIFEST).read_text())
    assert t["network"]["streaming"] is False and t["decode"]["chunk"] is None and t["decode"]["lm_weight"] == 4.0


def test_export_keeps_only_the_weights(toy_models, toy_recipe):
    import torch

    ck = torch.load(toy_models["student"] / "nnet.pt", weights_only=False)
    src = torch.load(toy_recipe / "exp" / "student" / "best.pt", weights_only=False)
    assert set(ck) <= {"format", "model_config", "model", "step", "epoch", "dev"}
    for k, v in src["model"].items():
        assert torch.equal(ck["model"][k], v), k


def test_export_refuses_an_existing_dir_and_a_missing_system(toy_recipe, tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(FileExistsError):
        export_model(toy_recipe / "exp", "student", tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="no_such"):
        export_model(toy_recipe / "exp", "no_such", tmp_path / "n")


@pytest.fixture
def copy(toy_models, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(toy_models["student"], dst)
    return dst


def _refused(d, piece):
    with pytest.raises(ModelDirError) as e:
        load_model_dir(d)
    assert e.value.piece == piece, str(e.value)
    assert piece.split(":")[0] in str(e.value)
    return str(e.value)


def test_missing_piece(copy):
    (copy / "tree").unlink()
    assert "missing" in _refused(copy, "tree")


def test_missing_manifest(copy):
    (copy / MANIFEST).unlink()
    _refused(copy, MANIFEST)


def test_checksum_mismatch(copy):
    data = bytearray((copy / "graph" / "HCLG.fst").read_bytes())
    data[-1] ^= 1
    (copy / "graph" / "HCLG.fst").write_bytes(bytes(data))
    assert "checksum mismatch" in _refused(copy, "graph/HCLG.fst")


def _rewrite(d, name, write):
    """Replace piece ``name`` and update its checksum: a consistent manifest over inconsistent pieces."""
    write(d / name)
    m = json.loads((d / MANIFEST).read_text())
    m["files"][name] = {"sha256": sha256(d / name), "bytes": (d / name).stat().st_size}
    (d / MANIFEST).write_text(json.dumps(m))


def test_priors_for_another_number_of_senones(copy):
    _rewrite(copy, "senone_counts.npy", lambda p: np.save(p, np.ones(3)))
    assert "3 priors" in _refused(copy, "senone_counts.npy")


def test_network_with_another_number_of_outputs(copy, tmp_path):
    from asrkit.testing.recipe import write_random_network

    _rewrite(copy, "nnet.pt", lambda p: write_random_network(p, 5, False, 0))
    assert "5 network outputs" in _refused(copy, "nnet.pt")


def test_tree_of_another_system(copy, toy_recipe, tmp_path):
    from asrkit.hmm import tree_to_bytes
    from asrkit.testing.oracle import make_toy_model

    other = make_toy_model(toy_recipe / "data" / "lang_senone", context_width=3).tree  # same pdfs, other tree
    _rewrite(copy, "tree", lambda p: p.write_bytes(tree_to_bytes(other)))
    _refused(copy, "tree")


def test_frontend_this_code_does_not_compute(copy):
    m = json.loads((copy / MANIFEST).read_text())
    m["frontend"]["num_mel_bins"] = 80
    (copy / MANIFEST).write_text(json.dumps(m))
    assert "80" in _refused(copy, f"{MANIFEST}:frontend.num_mel_bins")


def test_not_a_model_dir(tmp_path):
    _refused(tmp_path, MANIFEST)


def test_torchscript_student_equals_the_pytorch_one(toy_recipe, tmp_path):
    import torch

    from asrkit.bin.export_model import main
    from asrkit.infer.recognizer import Recognizer
    from asrkit.infer.torchscript import initial_state, run_chunks
    from asrkit.nnet.infer import log_posteriors

    assert main(["--exp-dir", str(toy_recipe / "exp"), "--system", "student", "--out", str(tmp_path / "m"),
                 "--torchscript"]) == 0  # --out: the alias of --out-dir
    md = load_model_dir(tmp_path / "m")
    assert "student.ts" in md.manifest["files"]
    rec = Recognizer(md)
    feats = np.random.default_rng(1).standard_normal((77, 192)).astype(np.float32)
    ts = torch.jit.load(str(tmp_path / "m" / "student.ts"))
    got = run_chunks(ts, feats, 32, initial_state(rec.network))
    assert np.array_equal(got, log_posteriors(rec.network, feats, streaming=True, chunk=32))
    with pytest.raises(ValueError, match="streaming student"):
        export_model(toy_recipe / "exp", "teacher", tmp_path / "t", torchscript=True)
    assert not (tmp_path / "t").exists()
