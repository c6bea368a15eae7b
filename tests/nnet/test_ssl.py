"""Semi-supervised student training: the loss dispatch, soft targets from shards, the schedules through
the real loop, learning-rate multipliers, exact resume, the tree check, the supervised baseline, the CLI."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from asrkit.features.reader import FeatureReader
from asrkit.nnet.dataset import ChunkDataset
from asrkit.nnet.losses import compute_loss
from asrkit.nnet.ssl import SslConfig, SslTrainer, open_pseudo_labels, select_labelled
from asrkit.nnet.train import TrainConfig, Trainer
from asrkit.pseudo.loss import topk_distillation_loss
from asrkit.pseudo.shards import LabelMismatchError

from .conftest import NUM_SENONES

K = 5


@pytest.fixture(scope="session")
def unsup(toy_dir, tmp_path_factory):
    """Unlabelled toy cuts (no targets), labelled by a tiny random teacher into shards; the last cut is
    not labelled (as if filtered) and must be left out."""
    from lhotse import CutSet

    from asrkit.nnet.models import build_model
    from asrkit.nnet.presets import preset
    from asrkit.nnet.toydata import make_toy_cuts
    from asrkit.pseudo.label import label_cuts, merge_indices
    from asrkit.pseudo.shards import tree_checksum

    d = tmp_path_factory.mktemp("ssl_unsup")
    cuts = list(make_toy_cuts(d / "feats", num_cuts=8, num_senones=NUM_SENONES, seed=5, prefix="unl",
                              frames_range=(60, 180), manifest=None))
    for c in cuts:
        c.custom = None  # like data/fbank/cuts_train_unsup.jsonl.gz: features only
    CutSet.from_cuts(cuts).to_file(d / "cuts_unsup.jsonl.gz")
    (d / "tree").write_bytes(b"toy senone tree A")
    (d / "other_tree").write_bytes(b"toy senone tree B")
    torch.manual_seed(3)
    teacher = build_model(preset("teacher", "tiny", num_senones=NUM_SENONES))
    label_cuts(teacher, cuts[:-1], FeatureReader(toy_dir / "cmvn.npz"), d / "pseudo", shard_size=3, k=K,
               tree_checksum=tree_checksum(d / "tree"))
    merge_indices(d / "pseudo")
    return {"d": d, "cuts": d / "cuts_unsup.jsonl.gz", "pseudo": d / "pseudo", "tree": d / "tree",
            "other_tree": d / "other_tree", "left_out": cuts[-1].id}


def _cfg(**kw):
    base = dict(role="student", preset="tiny", num_senones=NUM_SENONES, num_workers=0, max_frames=120,
                chunk_size=20, left_context=5, min_chunk=5, num_epochs=2, lr=5e-3, warmup_steps=3,
                progress=False, tensorboard=False, log_every=5, checkpoint_every=0, seed=7)
    base.update(kw)
    return TrainConfig(**base)


def _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, out, mode="interleaved", step_hook=None, **ssl_kw):
    labels = open_pseudo_labels(unsup["pseudo"], NUM_SENONES, unsup["tree"]) if mode != "supervised" else None
    return SslTrainer(cfg, toy_cuts, unsup["cuts"] if labels else None, toy_cuts, FeatureReader(toy_cmvn_path),
                      out, SslConfig(mode, **ssl_kw), labels, step_hook=step_hook)


def _recorder(trainer_ref, log):
    def hook(step):
        t = trainer_ref[0]
        cur = t.current
        log.append({"step": step, "kind": cur["kind"], "ids": tuple(zip(cur["cut_ids"], cur["starts"])),
                    "lr": t.opt.param_groups[0]["lr"], "mult": cur["lr_mult"], "base": t.sched.lr(step)})
    return hook


def _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, out, mode, **kw):
    ref, log = [None], []
    t = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, out, mode, step_hook=_recorder(ref, log), **kw)
    ref[0] = t
    t.run()
    return t, log


# ----------------------------------------------------------------------------- the loss


def test_loss_dispatch_is_the_reference_loss():
    import asrkit.nnet.losses as losses

    assert not hasattr(losses, "topk_distill_loss")  # one implementation only
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, 30, generator=g)
    ids = torch.stack([torch.randperm(30, generator=g)[:K] for _ in range(21)]).view(3, 7, K)
    probs = torch.rand(3, 7, K, generator=g).half()
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    probs[1, 4:] = 0
    for tau in (1.0, 2.0):
        a = logits.clone().requires_grad_(True)
        st = compute_loss(a, {"kind": "soft", "topk_ids": ids, "topk_probs": probs, "mask": mask}, temperature=tau)
        b = logits.clone().requires_grad_(True)
        ref = topk_distillation_loss(b, ids, probs, mask, temperature=tau)
        assert int(st.frames) == int(mask.sum())
        torch.testing.assert_close(st.loss, ref)  # mean over frames, as hard CE in the loop
        torch.testing.assert_close(st.loss_sum, ref * mask.sum())
        st.loss.backward()
        ref.backward()
        torch.testing.assert_close(a.grad, b.grad)
    assert int(st.correct) == int(((logits.argmax(-1) == ids[..., 0]) & mask).sum())


# ----------------------------------------------------------------------------- data


def test_soft_batches_come_from_the_shards(toy_cmvn_path, unsup):
    from lhotse import CutSet

    labels = open_pseudo_labels(unsup["pseudo"], NUM_SENONES, unsup["tree"])
    kept, missing = select_labelled(CutSet.from_file(unsup["cuts"]), labels)
    assert missing == [unsup["left_out"]] and len(kept) == 7
    reader = FeatureReader(toy_cmvn_path)
    ds = ChunkDataset.from_cuts(kept, reader, chunk_size=16, left_context=4, kind="soft",
                                num_senones=NUM_SENONES, labels=labels)
    b = ds[list(range(len(ds)))]
    assert b["kind"] == "soft" and b["topk_ids"].dtype == torch.int64 and b["topk_probs"].dtype == torch.float32
    assert int(b["mask"].sum()) == ds.scored_frames() == labels.num_frames  # every labelled frame once
    for row, s in enumerate(ds.segments):
        ids, probs = labels.get(ds.cuts[s.cut].id)
        a, L = s.start - s.ctx_start, s.ctx_end - s.ctx_start
        assert torch.equal(b["topk_ids"][row, a:a + s.end - s.start], ids[s.start:s.end])
        assert torch.equal(b["topk_probs"][row, a:a + s.end - s.start], probs[s.start:s.end])
        assert (b["topk_probs"][row, :a] == 0).all() and (b["topk_probs"][row, L:] == 0).all()
        np.testing.assert_allclose(b["features"][row, :L].numpy(), reader(ds.cuts[s.cut])[s.ctx_start:s.ctx_end])
    torch.testing.assert_close(b["topk_probs"][b["mask"]].sum(-1), torch.ones(int(b["mask"].sum())))
    assert torch.isfinite(compute_loss(torch.randn(*b["mask"].shape, NUM_SENONES), b).loss)


def test_labels_of_another_tree_or_inventory_are_refused(unsup):
    with pytest.raises(LabelMismatchError, match="senone tree"):
        open_pseudo_labels(unsup["pseudo"], NUM_SENONES, unsup["other_tree"])
    with pytest.raises(LabelMismatchError, match="num_senones"):
        open_pseudo_labels(unsup["pseudo"], NUM_SENONES + 1, unsup["tree"])


# ----------------------------------------------------------------------------- the loop


def test_interleaved_and_segregated_differ_only_in_order(toy_cuts, toy_cmvn_path, unsup, tmp_path):
    cfg = _cfg(scheduler="constant")
    ti, inter = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "i", "interleaved",
                              labelled_lr_mult=2.0)
    ts, seg = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "s", "segregated",
                            labelled_lr_mult=2.0)
    n_l, n_m = ti.sampler.num_batches(0), ti.machine_sampler.num_batches(0)
    assert n_l >= 3 and n_m >= 3
    assert ti.step == ts.step == len(inter) == len(seg) == sum(
        ti.sampler.num_batches(e) + ti.machine_sampler.num_batches(e) for e in range(2))
    for e in (0, 1):  # per epoch: the same multiset of (kind, batch, lr)
        lo = ti.history[e - 1]["step"] if e else 0
        assert ts.history[e]["step"] == ti.history[e]["step"]
        a = [(x["kind"], x["ids"], x["lr"]) for x in inter if lo < x["step"] <= ti.history[e]["step"]]
        b = [(x["kind"], x["ids"], x["lr"]) for x in seg if lo < x["step"] <= ts.history[e]["step"]]
        assert len(a) == ti.sampler.num_batches(e) + ti.machine_sampler.num_batches(e)
        assert Counter(a) == Counter(b) and a != b
    assert Counter((x["kind"], x["ids"], x["lr"]) for x in inter) == Counter((x["kind"], x["ids"], x["lr"])
                                                                            for x in seg)
    ki = "".join(x["kind"][0].upper() for x in inter[:n_l + n_m])
    ks = "".join(x["kind"][0].upper() for x in seg[:n_l + n_m])
    assert ks == "M" * n_m + "L" * n_l and ki != ks and ki.count("L") == n_l
    assert [x["ids"] for x in inter if x["kind"] == "labelled"] == [x["ids"] for x in seg if x["kind"] == "labelled"]
    # per-kind statistics in the history
    h = ti.history[-1]
    assert h["batches_labelled"] == ti.sampler.num_batches(1) and h["batches_machine"] == ti.machine_sampler.num_batches(1)
    assert 0.0 <= h["train_acc_machine"] <= 1.0 and h["train_loss_machine"] > 0
    assert [json.loads(x)["step"] for x in (tmp_path / "i" / "history.jsonl").read_text().splitlines()] == [
        x["step"] for x in ti.history]


def test_labelled_lr_multiplier_applied_per_step(toy_cuts, toy_cmvn_path, unsup, tmp_path):
    cfg = _cfg(num_epochs=1, warmup_steps=4, decay_half_life=3)  # the LR changes every step
    t, log = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "i", "interleaved",
                           labelled_lr_mult=2.5, ratio="2")
    assert {x["kind"] for x in log} == {"labelled", "machine"}
    for x in log:
        want = x["base"] * (2.5 if x["kind"] == "labelled" else 1.0)
        assert x["lr"] == pytest.approx(want, rel=1e-12), x
    # ratio 2: M M L M M L ... while both last
    kinds = "".join(x["kind"][0].upper() for x in log)
    assert kinds.startswith("MML")
    _, seg = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "s", "segregated",
                           labelled_lr_mult=2.5, ratio="2")
    # the same updates at the same steps see the same scheduler LR in both orders
    assert [x["base"] for x in log] == [x["base"] for x in seg]


class Kill(Exception):
    pass


def test_resume_mid_interleaved_run_is_exact(toy_cuts, toy_cmvn_path, unsup, tmp_path):
    cfg = _cfg(dropout=0.3, checkpoint_every=3, keep_last=2)
    full, full_log = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "a", "interleaved")
    per_epoch = full.sampler.num_batches(0) + full.machine_sampler.num_batches(0)
    kill_at = per_epoch + 4 if (per_epoch + 4) % 3 else per_epoch + 5  # mid-epoch 2, not at a checkpoint

    def killer(step):
        if step == kill_at:
            raise Kill()

    with pytest.raises(Kill):
        _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "b", step_hook=killer).run()
    ref, log = [None], []
    resumed = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "b", step_hook=_recorder(ref, log))
    ref[0] = resumed
    assert resumed.resumed_from is not None and per_epoch < resumed.step < kill_at
    resumed.run()
    assert resumed.step == full.step
    assert log == full_log[-len(log):]  # the same batches and LRs from the checkpoint on
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    # another mode cannot resume this run's schedule
    with pytest.raises(ValueError, match="mode"):
        _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "b", mode="segregated")


def test_supervised_mode_equals_plain_training(toy_cuts, toy_cmvn_path, unsup, tmp_path):
    cfg = _cfg(dropout=0.2)
    plain = Trainer(cfg, toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "plain")
    plain.run()
    sup = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "sup", mode="supervised",
                   labelled_lr_mult=1.0)
    sup.run()
    assert sup.step == plain.step == sum(plain.sampler.num_batches(e) for e in range(2))
    for k, v in plain.model.state_dict().items():
        assert torch.equal(v, sup.model.state_dict()[k]), k
    assert sup.history[-1]["dev_acc"] == plain.history[-1]["dev_acc"]


def test_equal_update_epochs():
    from asrkit.nnet.ssl import equal_update_epochs

    assert equal_update_epochs(16, 1.13, 2.13) == 9  # speechocean762: 8.49 -> 9
    assert equal_update_epochs(18, 0.4, 2.0) == 4  # synth: 3.6 -> 4
    assert equal_update_epochs(4, 1.0, 2.0) == 2  # exact: not rounded up by float noise
    assert equal_update_epochs(10, 1.0, 1.0) == 10
    assert equal_update_epochs(3, 1.0, 100.0) == 1  # at least one epoch
    with pytest.raises(ValueError):
        equal_update_epochs(3, 0.0, 1.0)


@pytest.mark.parametrize("mode", ["interleaved", "supervised"])
def test_equal_updates_match_the_supervised_students(toy_cuts, toy_cmvn_path, unsup, tmp_path, mode):
    """With equal_updates, an SSL student (or the oracle: several labelled manifests) trains about as many
    updates as the supervised student of num_epochs on the first labelled manifest."""
    from lhotse import CutSet

    cfg = _cfg(num_epochs=6, num_buckets=1, max_frames=60)  # one bucket: batches follow the amount of data
    sup = Trainer(cfg, toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "sup")
    sup_updates = sum(sup.sampler.num_batches(e) for e in range(6))
    if mode == "supervised":  # the oracle: train_sup + train_unsup with targets (here: toy cuts twice over)
        extra = CutSet.from_cuts([c.with_id(c.id + "-copy") for c in toy_cuts])
        t = SslTrainer(cfg, [toy_cuts, extra], None, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / mode,
                       SslConfig("supervised", labelled_lr_mult=1.0, equal_updates=True), None)
        assert t.cfg.num_epochs == 3  # twice the data: half the epochs, the same updates
    else:
        t = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / mode, mode, equal_updates=True)
        assert 1 <= t.cfg.num_epochs < 6
    updates = sum(len(t.schedule(e)) for e in range(t.cfg.num_epochs))
    per_epoch = len(t.schedule(0))
    assert abs(updates - sup_updates) < per_epoch  # whole epochs, and hours only approximate batches
    plain = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "plain", "interleaved")
    assert plain.cfg.num_epochs == 6  # without it, num_epochs passes over everything


# ----------------------------------------------------------------------------- the CLI


def test_cli(toy_dir, toy_cmvn_path, unsup, tmp_path, capsys):
    from asrkit.bin import train_student
    from asrkit.utils.atomic import is_done

    cuts = str(toy_dir / "cuts.jsonl.gz")
    common = ["--labelled-cuts", cuts, "--unlabelled-cuts", str(unsup["cuts"]), "--pseudo-dir",
              str(unsup["pseudo"]), "--dev-cuts", cuts, "--cmvn", str(toy_cmvn_path), "--num-senones",
              str(NUM_SENONES), "--preset", "tiny", "--num-epochs", "1", "--num-workers", "0", "--max-frames",
              "120", "--chunk-size", "20", "--progress", "false", "--tensorboard", "true"]
    out = tmp_path / "inter"
    assert train_student.main(["--mode", "interleaved", "--tree", str(unsup["tree"]), "--ratio", "3/2",
                               "--out-dir", str(out), *common]) == 0
    assert is_done(out / "best.pt") and (out / "epoch-1.pt").exists() and (out / "tensorboard").is_dir()
    h = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    assert {"train_loss_labelled", "train_acc_machine", "dev_acc"} <= set(h)
    import yaml

    conf = yaml.safe_load((out / "config.yaml").read_text())
    assert conf["ssl"]["mode"] == "interleaved" and conf["ssl"]["ratio"] == "3/2"
    assert conf["ssl"]["labelled_lr_mult"] == 2.0
    assert "left out" in capsys.readouterr().err
    # labels of another tree: a clear refusal, nothing trained
    bad = tmp_path / "bad"
    assert train_student.main(["--mode", "segregated", "--tree", str(unsup["other_tree"]), "--out-dir", str(bad),
                               *common]) == 1
    assert "senone tree" in capsys.readouterr().err and not (bad / "best.pt").exists()
    # the oracle / supervised baseline: several labelled manifests would be concatenated; one here
    sup = tmp_path / "sup"
    assert train_student.main(["--mode", "supervised", "--labelled-cuts", cuts, "--dev-cuts", cuts, "--cmvn",
                               str(toy_cmvn_path), "--num-senones", str(NUM_SENONES), "--preset", "tiny",
                               "--num-epochs", "1", "--num-workers", "0", "--progress", "false",
                               "--tensorboard", "false", "--out-dir", str(sup)]) == 0
    assert is_done(sup / "best.pt")


def test_concat_cuts_for_the_oracle(toy_dir, unsup):
    from asrkit.nnet.ssl import concat_cuts

    lab = toy_dir / "cuts.jsonl.gz"
    both = concat_cuts([lab, unsup["cuts"]])
    assert len(both) == 6 + 8 and both[0].id == "utt0000" and both[-1].id.startswith("unl")
    assert [c.id for c in concat_cuts(list(both))] == [c.id for c in both]  # a plain list of cuts
    assert len(concat_cuts(str(lab))) == 6
    with pytest.raises(ValueError, match="twice"):
        concat_cuts([lab, lab])
