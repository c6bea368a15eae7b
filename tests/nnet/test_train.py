import math

import numpy as np
import pytest
import torch

from asrkit.features.reader import FeatureReader
from asrkit.nnet.checkpoint import ConfigMismatchError, latest_checkpoint, load_checkpoint
from asrkit.nnet.train import LrScheduler, NonFiniteLossError, TrainConfig, Trainer

from .conftest import NUM_SENONES


def _cfg(**kw):
    base = dict(role="student", preset="tiny", num_senones=NUM_SENONES, num_workers=0, max_frames=240,
                chunk_size=30, left_context=5, min_chunk=5, num_epochs=2, lr=5e-3, warmup_steps=3,
                progress=False, tensorboard=False, log_every=5, checkpoint_every=0, seed=7)
    base.update(kw)
    return TrainConfig(**base)


class Kill(Exception):
    pass


def test_overfit_small_model(toy_cuts, toy_cmvn_path, tmp_path):
    cuts = list(toy_cuts)[:3]
    cfg = _cfg(role="teacher", hidden_size=64, num_epochs=30, lr=2e-2, warmup_steps=5, chunk_size=0,
               max_frames=2000, num_buckets=1, decay_half_life=0)
    res = Trainer(cfg, cuts, cuts, FeatureReader(toy_cmvn_path), tmp_path / "exp").run()
    assert res.best_dev_acc > 0.97, res.history[-1]
    best = load_checkpoint(tmp_path / "exp" / "best.pt")
    assert best["dev"]["acc"] == res.best_dev_acc
    assert (tmp_path / "exp" / "epoch-30.pt").exists() and (tmp_path / "exp" / "history.jsonl").exists()


def _params(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_resume_gives_the_same_parameters(toy_cuts, toy_cmvn_path, tmp_path):
    reader = FeatureReader(toy_cmvn_path)
    cfg = _cfg(dropout=0.3, checkpoint_every=3, keep_last=2)
    full = Trainer(cfg, toy_cuts, toy_cuts, reader, tmp_path / "a")
    full.run()
    ref = _params(full)
    steps_per_epoch = full.sampler.num_batches(0)
    assert full.step > steps_per_epoch > 5

    def killer(step):
        if step == steps_per_epoch + 2:  # mid-epoch 2, after the checkpoint at a multiple of 3
            raise Kill()

    with pytest.raises(Kill):
        Trainer(cfg, toy_cuts, toy_cuts, reader, tmp_path / "b", step_hook=killer).run()
    resumed = Trainer(cfg, toy_cuts, toy_cuts, reader, tmp_path / "b")
    assert resumed.resumed_from is not None and resumed.step < steps_per_epoch + 2
    resumed.run()
    assert resumed.step == full.step
    for k, v in ref.items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    # at most keep_last step checkpoints remain
    assert len(list((tmp_path / "b").glob("checkpoint-*.pt"))) <= 2


class NanReader:
    def __init__(self, reader, bad_id):
        self.reader, self.bad_id = reader, bad_id

    def __call__(self, cut):
        x = self.reader(cut)
        return x * np.nan if cut.id == self.bad_id else x


def test_nan_loss_stops_with_ids_and_keeps_checkpoint(toy_cuts, toy_cmvn_path, tmp_path):
    reader = FeatureReader(toy_cmvn_path)
    bad = list(toy_cuts)[4].id
    cfg = _cfg(checkpoint_every=1, chunk_size=0, max_frames=200)  # one cut per batch
    out = tmp_path / "exp"
    with pytest.raises(NonFiniteLossError, match=bad) as e:
        Trainer(cfg, toy_cuts, toy_cuts, NanReader(reader, bad), out).run()
    err = e.value
    assert err.cut_ids == [bad] and err.step >= 1
    last = latest_checkpoint(out)
    if err.step > 1:
        ck = load_checkpoint(last)
        assert ck["step"] == err.step - 1
        assert all(torch.isfinite(v).all() for v in ck["model"].values())
    else:
        assert last is None
    assert f"step {err.step}" in str(err)


def test_mismatched_config_refused(toy_cuts, toy_cmvn_path, tmp_path):
    reader = FeatureReader(toy_cmvn_path)
    out = tmp_path / "exp"
    Trainer(_cfg(num_epochs=1), toy_cuts, None, reader, out).run()
    with pytest.raises(ConfigMismatchError, match=r"hidden_size: checkpoint 32, now 48") as e:
        Trainer(_cfg(num_epochs=2, hidden_size=48, num_layers=3), toy_cuts, None, reader, out)
    assert "num_layers" in str(e.value)


def test_newbob_and_warmup_schedules():
    s = LrScheduler(_cfg(scheduler="newbob", lr=1.0, newbob_start=0.01, newbob_stop=0.001))
    for loss in (2.0, 1.5, 1.49, 1.485, 1.4849):
        s.epoch_end(loss)
    assert s.halving and s.stop and math.isclose(s.lr(0), 0.125)
    w = LrScheduler(_cfg(scheduler="warmup", lr=1.0, warmup_steps=10, decay_half_life=10, min_lr=0.0))
    assert math.isclose(w.lr(5), 0.5) and math.isclose(w.lr(10), 1.0) and math.isclose(w.lr(20), 0.5)


def test_a_budget_of_updates_ends_mid_epoch_validated(toy_cuts, toy_cmvn_path, tmp_path):
    """max_updates: exactly that many updates whatever num_epochs says, the last epoch cut and closed
    (validated, history line with the budget, epoch checkpoint); a relaunch trains nothing more."""
    probe = Trainer(_cfg(), toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "probe")
    per_epoch = probe.sampler.num_batches(0)
    assert per_epoch >= 2
    budget = per_epoch + per_epoch // 2  # one and a half epochs
    cfg = _cfg(num_epochs=1, max_updates=budget)
    t = Trainer(cfg, toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "b")
    res = t.run()
    assert res.step == budget and res.epoch == 2 and res.stopped == "done"
    assert [h["step"] for h in res.history] == [per_epoch, budget]
    assert res.history[-1]["max_updates"] == budget and "dev_acc" in res.history[-1]
    assert load_checkpoint(tmp_path / "b" / "epoch-2.pt")["step"] == budget
    again = Trainer(cfg, toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "b").run()
    assert again.step == budget and len(again.history) == 2


def test_train_nnet_takes_several_train_manifests(toy_dir, tmp_path, monkeypatch, capsys):
    """--train-cuts A B (train_sup and its speed-perturbed copies): the trainer reads the cuts of both; one
    manifest is passed on as itself, as before the option."""
    from asrkit.bin import train_nnet
    from asrkit.testing.cuts import write_toy_cuts

    more = tmp_path / "sp"
    write_toy_cuts(more, num_cuts=3, num_senones=NUM_SENONES, lengths=[80, 97, 121], seed=2, prefix="utt_sp0.9-")
    cuts, cmvn = str(toy_dir / "cuts.jsonl.gz"), str(toy_dir / "cmvn.npz")
    (tmp_path / "t.yaml").write_text("role: teacher\npreset: tiny\nnum_epochs: 1\nmax_frames: 500\nnum_workers: 0\n"
                                     "progress: false\ntensorboard: false\n")
    common = ["--config", str(tmp_path / "t.yaml"), "--dev-cuts", cuts, "--cmvn", cmvn,
              "--num-senones", str(NUM_SENONES)]
    assert train_nnet.main(common + ["--train-cuts", cuts, str(more / "cuts.jsonl.gz"),
                                     "--out-dir", str(tmp_path / "exp")]) == 0
    assert "data: 9 train cuts" in capsys.readouterr().err  # 6 + 3
    seen = []

    def stop(cfg, train_cuts, *args, **kw):  # what main hands the trainer, and no training
        seen.append(train_cuts)
        raise Kill

    monkeypatch.setattr(train_nnet, "train", stop)
    with pytest.raises(Kill):
        train_nnet.main(common + ["--train-cuts", cuts, "--out-dir", str(tmp_path / "one")])
    assert seen == [cuts]
