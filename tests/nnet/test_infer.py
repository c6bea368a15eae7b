import numpy as np
import pytest
import torch

from asrkit.features.reader import FeatureReader
from asrkit.nnet.checkpoint import save_checkpoint
from asrkit.nnet.infer import load_model, log_posteriors, log_priors_from_counts, write_scores
from asrkit.nnet.models import build_model
from asrkit.nnet.presets import preset

from .conftest import NUM_SENONES


@pytest.fixture
def student_ckpt(tmp_path):
    torch.manual_seed(0)
    cfg = preset("student", "tiny", num_senones=NUM_SENONES)
    m = build_model(cfg)
    p = tmp_path / "best.pt"
    save_checkpoint(p, {"model_config": cfg.to_dict(), "model": m.state_dict(), "step": 1})
    return p


def test_priors_floored_and_unseen_senones_disabled():
    lp = log_priors_from_counts(np.array([0.0, 1e-9, 1.0, 3.0]), floor=1e-6)
    np.testing.assert_allclose(lp[1:], np.log([1e-6, 0.25, 0.75]).astype(np.float32), rtol=1e-6)
    # a senone never seen in training can never win: even a certain posterior scores far below the rest
    scores = np.log(np.array([[0.97, 0.01, 0.01, 0.01]], dtype=np.float32)) - lp
    assert scores.argmax() != 0 and scores[0, 0] < -1e9


def test_streaming_log_posteriors_equal_offline(student_ckpt, toy_cuts, toy_cmvn_path):
    model, cfg, _ = load_model(student_ckpt)
    feats = FeatureReader(toy_cmvn_path)(list(toy_cuts)[1])
    off = log_posteriors(model, feats)
    on = log_posteriors(model, feats, streaming=True, chunk=8)
    assert off.shape == (len(feats), NUM_SENONES)
    np.testing.assert_allclose(on, off, atol=1e-5)
    np.testing.assert_allclose(np.exp(off).sum(1), 1.0, atol=1e-5)


def test_write_scores_readable_by_decode(student_ckpt, toy_cuts, toy_cmvn_path, tmp_path):
    import kaldiio

    from asrkit.decode.decoder import iter_scores, read_log_priors, with_priors

    model, cfg, _ = load_model(student_ckpt)
    reader = FeatureReader(toy_cmvn_path)
    counts = np.arange(NUM_SENONES) + 1.0
    lp = log_priors_from_counts(counts)
    out = tmp_path / "decode_dev" / "scores"
    summ = write_scores(model, toy_cuts, reader, out, lp, streaming=True, chunk=16, progress=False)
    assert summ["cuts"] == len(toy_cuts)
    got = dict(kaldiio.load_scp(str(out / "scores.scp")))
    for cut in toy_cuts:
        ref = log_posteriors(model, reader(cut)) - lp
        assert got[cut.id].dtype == np.float32
        np.testing.assert_allclose(got[cut.id], ref, atol=1e-4)
    # decode's reader takes the directory; raw log-posteriors + --log-priors give the same scores
    out2 = tmp_path / "lp"
    write_scores(model, toy_cuts, reader, out2, lp, output="log_posteriors", progress=False)
    a = dict((u, kaldiio.load_mat(m) if isinstance(m, str) else m) for u, m in iter_scores(out))
    b = dict(with_priors(iter_scores(out2), read_log_priors(out2 / "log_priors.npy")))
    for u in a:
        np.testing.assert_allclose(a[u], b[u], atol=1e-4)


def test_teacher_refuses_streaming(toy_cuts, toy_cmvn_path):
    m = build_model(preset("teacher", "tiny", num_senones=NUM_SENONES))
    with pytest.raises(ValueError, match="unidirectional"):
        log_posteriors(m, np.zeros((10, 192), np.float32), streaming=True)


def test_cli_train_then_forward(toy_dir, tmp_path):
    from asrkit.bin import nnet_forward, train_nnet

    np.save(tmp_path / "counts.npy", np.ones(NUM_SENONES))
    (tmp_path / "teacher.yaml").write_text("role: teacher\npreset: tiny\nnum_epochs: 1\nmax_frames: 500\n"
                                           "num_workers: 0\nprogress: false\n")
    cuts = str(toy_dir / "cuts.jsonl.gz")
    rc = train_nnet.main(["--config", str(tmp_path / "teacher.yaml"), "--train-cuts", cuts, "--dev-cuts", cuts,
                          "--cmvn", str(toy_dir / "cmvn.npz"), "--num-senones", str(NUM_SENONES),
                          "--out-dir", str(tmp_path / "exp"), "--lr", "3e-3", "--tensorboard", "false"])
    assert rc == 0 and (tmp_path / "exp" / "best.pt").exists()
    assert (tmp_path / "exp" / ".best.pt.done").exists()
    assert "lr: 0.003" in (tmp_path / "exp" / "config.yaml").read_text()
    import yaml  # where the data came from is recorded beside the config (the report's ablation reads it)

    data = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())["data"]
    assert data == {"train_cuts": cuts, "dev_cuts": cuts}
    rc = nnet_forward.main(["--model", str(tmp_path / "exp" / "best.pt"), "--cuts", cuts, "--cmvn",
                            str(toy_dir / "cmvn.npz"), "--priors", str(tmp_path / "counts.npy"),
                            "--out", str(tmp_path / "scores")])
    assert rc == 0 and (tmp_path / "scores" / "scores.scp").exists()
    # another model file of the same folder (the recipes' --nnet-avg: avg.pt beside best.pt) is recomputed,
    # and so is best.pt again after it, though best.pt is older than the scores
    from asrkit.bin import average_checkpoints

    assert average_checkpoints.main(["--dir", str(tmp_path / "exp"), "--last", "1"]) == 0
    from asrkit.utils.fingerprint import read_marker

    for model, redo in (("best.pt", False), ("avg.pt", True), ("best.pt", True), ("best.pt", False)):
        before = (tmp_path / "scores" / "scores.scp").stat().st_mtime_ns
        rc = nnet_forward.main(["--model", str(tmp_path / "exp" / model), "--cuts", cuts, "--cmvn",
                                str(toy_dir / "cmvn.npz"), "--priors", str(tmp_path / "counts.npy"),
                                "--out", str(tmp_path / "scores")])
        assert rc == 0 and read_marker(tmp_path / "scores")["inputs"]["model"]["path"] == str(tmp_path / "exp" / model)
        assert ((tmp_path / "scores" / "scores.scp").stat().st_mtime_ns != before) == redo, model
