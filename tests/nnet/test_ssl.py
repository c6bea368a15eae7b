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
    from asrkit.testing.cuts import write_toy_cuts
    from asrkit.pseudo.label import label_cuts, merge_indices
    from asrkit.pseudo.shards import tree_checksum

    d = tmp_path_factory.mktemp("ssl_unsup")
    cuts = list(write_toy_cuts(d / "feats", num_cuts=8, num_senones=NUM_SENONES, seed=5, prefix="unl",
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
    """Segregated over the whole run (the article's): every machine-labelled batch of both epochs, then
    every labelled one; the same batches, LRs and updates as the interleaved run; validated at the same
    updates."""
    cfg = _cfg(scheduler="constant")
    ti, inter = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "i", "interleaved",
                              labelled_lr_mult=2.0)
    ts, seg = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "s", "segregated",
                            labelled_lr_mult=2.0)
    n_l = sum(ti.sampler.num_batches(e) for e in range(2))
    n_m = sum(ti.machine_sampler.num_batches(e) for e in range(2))
    assert ti.sampler.num_batches(0) >= 3 and ti.machine_sampler.num_batches(0) >= 3
    assert ti.step == ts.step == len(inter) == len(seg) == n_l + n_m
    key = lambda x: (x["kind"], x["ids"], x["lr"])  # noqa: E731
    assert Counter(map(key, inter)) == Counter(map(key, seg))
    assert "".join(x["kind"][0].upper() for x in seg) == "M" * n_m + "L" * n_l
    ki = "".join(x["kind"][0].upper() for x in inter[:ti.history[0]["step"]])
    assert ki.count("L") == ti.sampler.num_batches(0) and ki.count("M") == ti.machine_sampler.num_batches(0)
    for kind in ("labelled", "machine"):  # each kind in the same order: epoch by epoch
        assert [x["ids"] for x in inter if x["kind"] == kind] == [x["ids"] for x in seg if x["kind"] == kind]
    assert [h["step"] for h in ts.history] == [h["step"] for h in ti.history]
    # per-kind statistics in the history
    h = ti.history[-1]
    assert h["batches_labelled"] == ti.sampler.num_batches(1) and h["batches_machine"] == ti.machine_sampler.num_batches(1)
    assert 0.0 <= h["train_acc_machine"] <= 1.0 and h["train_loss_machine"] > 0
    assert ts.history[0].get("batches_labelled", 0) == 0  # the first half of a segregated run: machine only
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


def test_supervised_student_trains_at_the_labelled_multiplier(toy_cuts, toy_cmvn_path, unsup, tmp_path):
    """The baseline's batches (all labelled) get the semi-supervised students' labelled multiplier."""
    cfg = _cfg(num_epochs=1, warmup_steps=4, decay_half_life=3)
    _, log = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "sup", "supervised")
    assert log and all(x["kind"] == "labelled" for x in log)
    for x in log:
        assert x["lr"] == pytest.approx(2.0 * x["base"], rel=1e-12), x  # SslConfig's default 2.0


def _budget_students(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path, modes, **kw):
    out = {}
    for mode in modes:
        out[mode] = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / mode, mode, equal_updates=True,
                                  **kw)
    return out


def test_equal_updates_are_exactly_the_supervised_students(toy_cuts, toy_cmvn_path, unsup, tmp_path):
    """With equal_updates every student (supervised, interleaved, segregated, the oracle: several labelled
    manifests) makes exactly the updates of the supervised student's num_epochs on the first manifest,
    stopping mid-epoch where need be, validated and recorded there."""
    from lhotse import CutSet

    from asrkit.nnet.ssl import supervised_updates

    cfg = _cfg(num_epochs=3, scheduler="constant")
    plain = Trainer(cfg, toy_cuts, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "plain")
    plain.run()
    want = sum(plain.sampler.num_batches(e) for e in range(3))
    assert plain.step == want == supervised_updates(toy_cuts, cfg)
    runs = _budget_students(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path, ["supervised", "interleaved", "segregated"])
    for mode, (t, log) in runs.items():
        assert t.step == len(log) == want, mode
        assert t.cfg.max_updates == want and t.history[-1]["step"] == want
        assert t.history[-1]["max_updates"] == want and "dev_acc" in t.history[-1]
        assert (tmp_path / mode / f"epoch-{t.run_schedule.num_epochs}.pt").exists()
    ti = runs["interleaved"][0]
    per_epoch = ti.sampler.num_batches(0) + ti.machine_sampler.num_batches(0)
    assert want % per_epoch != 0 or ti.run_schedule.num_epochs == want // per_epoch  # (here: a cut last epoch)
    assert ti.run_schedule.lengths[-1] < ti.sampler.num_batches(ti.run_schedule.num_epochs - 1) + \
        ti.machine_sampler.num_batches(ti.run_schedule.num_epochs - 1)
    # the same batches in both semi-supervised runs, only the order differs
    key = lambda x: (x["kind"], x["ids"], x["mult"])  # noqa: E731
    assert Counter(map(key, runs["interleaved"][1])) == Counter(map(key, runs["segregated"][1]))
    # the oracle: train_sup + more labelled data (here: toy cuts twice over): the same budget
    extra = CutSet.from_cuts([c.with_id(c.id + "-copy") for c in toy_cuts])
    oracle = SslTrainer(cfg, [toy_cuts, extra], None, toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "oracle",
                        SslConfig("supervised", equal_updates=True), None)
    oracle.run()
    assert oracle.step == want
    # without it, num_epochs passes over everything
    free = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "free", "interleaved")
    assert free.cfg.max_updates == 0 and len(free.run_schedule) == sum(
        free.sampler.num_batches(e) + free.machine_sampler.num_batches(e) for e in range(3))


@pytest.mark.parametrize("mode", ["interleaved", "segregated"])
def test_resume_mid_budget_is_exact(toy_cuts, toy_cmvn_path, unsup, tmp_path, mode):
    """A run killed mid-way through its budget resumes to the same parameters, best.pt and history as an
    uninterrupted one; relaunching a finished run trains nothing."""
    cfg = _cfg(dropout=0.3, checkpoint_every=3, keep_last=2, max_updates=23)
    full, full_log = _run_recorded(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "a", mode)
    assert full.step == 23 and full.run_schedule.lengths == [20, 3]  # epochs of 10 + 10 batches: the second cut
    kill_at = 22  # after the checkpoint of update 21, the first of the cut epoch

    def killer(step):
        if step == kill_at:
            raise Kill()

    with pytest.raises(Kill):
        _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "b", mode, step_hook=killer).run()
    ref, log = [None], []
    resumed = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "b", mode, step_hook=_recorder(ref, log))
    ref[0] = resumed
    assert (resumed.step, resumed.epoch, resumed.batch_in_epoch) == (21, 1, 1)
    resumed.run()
    assert resumed.step == 23 and log == full_log[21:]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    best_a, best_b = (torch.load(tmp_path / d / "best.pt", weights_only=False) for d in ("a", "b"))
    assert best_a["step"] == best_b["step"]
    for k, v in best_a["model"].items():
        assert torch.equal(v, best_b["model"][k]), k
    assert [h["step"] for h in resumed.history] == [h["step"] for h in full.history]
    again = _trainer(cfg, toy_cuts, toy_cmvn_path, unsup, tmp_path / "b", mode)
    assert again.run().step == 23
    with pytest.raises(ValueError, match="budget"):  # another budget cannot resume it
        _trainer(_cfg(dropout=0.3, checkpoint_every=3, keep_last=2, max_updates=25), toy_cuts, toy_cmvn_path, unsup,
                 tmp_path / "b", mode)


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
    assert conf["data"] == {"train_cuts": [cuts], "dev_cuts": cuts, "unlabelled_cuts": str(unsup["cuts"])}
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


def test_equal_updates_reads_a_manifest_once_streamed(toy_dir, toy_cuts, toy_cmvn_path, tmp_path, monkeypatch):
    """With manifest paths the budget comes from one streaming pass over train_sup (each cut checked
    once, nothing kept but lengths), and it is the count of supervised_updates."""
    import asrkit.nnet.ssl as ssl_mod

    seen = []

    def counting(cut, *a, **kw):
        seen.append(cut.id)
        return check(cut, *a, **kw)

    check = ssl_mod.check_cut
    monkeypatch.setattr(ssl_mod, "check_cut", counting)
    cfg = _cfg(num_epochs=3, scheduler="constant")
    t = SslTrainer(cfg, str(toy_dir / "cuts.jsonl.gz"), None, None, FeatureReader(toy_cmvn_path), tmp_path / "m",
                   SslConfig("supervised", equal_updates=True), None)
    assert sorted(seen) == sorted(c.id for c in toy_cuts)  # one pass
    assert t.cfg.max_updates == ssl_mod.supervised_updates(iter(toy_cuts), cfg) > 0  # an iterator will do
    lengths, seconds = ssl_mod.scan_labelled(toy_cuts)
    assert ssl_mod.updates_of_lengths(lengths, cfg) == t.cfg.max_updates
    assert seconds == pytest.approx(sum(c.duration for c in toy_cuts))
