"""The shard loader (asrkit.nnet.shard_loader): shards written from the toy manifests hold exactly what
the manifest loader reads, a stream serves every chunk once per epoch within max_frames and a bounded
buffer, resumes exactly, and a student trains on it and resumes mid-run to the same parameters."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asrkit.features.reader import FeatureReader, load_frames
from asrkit.nnet.dataset import ChunkDataset
from asrkit.nnet.shard_loader import ShardStream, write_training_shards
from asrkit.nnet.ssl import SslConfig, SslTrainer, open_pseudo_labels
from asrkit.pseudo.shards import ShardError

from .conftest import NUM_SENONES
from .test_ssl import Kill, _cfg, unsup  # noqa: F401 - the labelled toy set of the SSL tests

CHUNK = dict(chunk_size=20, left_context=5, right_context=0, min_chunk=5)


@pytest.fixture(scope="module")
def shards(toy_dir, unsup, tmp_path_factory):  # noqa: F811
    d = tmp_path_factory.mktemp("tshards")
    labels = open_pseudo_labels(unsup["pseudo"], NUM_SENONES, unsup["tree"])
    lab = write_training_shards([toy_dir / "cuts.jsonl.gz"], d / "lab", "hard", num_senones=NUM_SENONES,
                                max_bytes=40000)
    mach = write_training_shards([unsup["cuts"]], d / "mach", "soft", labels, max_bytes=40000)
    assert lab["num_shards"] > 1 and mach["num_shards"] > 1
    assert mach["left_out"] == 1 and mach["tree_checksum"] == labels.index["tree_checksum"]
    # the toy frames come from lhotse's lilcom archives: stored as lilcom bytes where a second lilcom pass
    # gives them back bit for bit, which one unlabelled cut's do not (unl0003: 9,890 values move by <= 2^-6)
    assert (lab["feats_lilcom"], lab["feats_float32"]) == (lab["num_cuts"], 0)
    assert (mach["feats_lilcom"], mach["feats_float32"]) == (mach["num_cuts"] - 1, 1)
    return {"lab": d / "lab", "mach": d / "mach", "labels": labels}


def _stream(root, cmvn, seed=0, buffer_size=8, max_frames=120, **kw):
    return ShardStream(root, FeatureReader(cmvn), max_frames=max_frames, seed=seed, buffer_size=buffer_size,
                       num_buckets=3, num_senones=NUM_SENONES, **CHUNK, **kw)


def _rows(batch):
    """{(cut, start): (features, targets...)} of a batch's rows, unpadded."""
    out = {}
    for b, (cid, st) in enumerate(zip(batch["cut_ids"], batch["starts"].tolist())):
        L = int(batch["lengths"][b])
        tg = ([batch["targets"][b, :L]] if batch["kind"] == "hard"
              else [batch["topk_ids"][b, :L], batch["topk_probs"][b, :L]])
        out[(cid, st)] = [batch["features"][b, :L], batch["mask"][b, :L], *tg]
    return out


def test_batches_hold_what_the_manifest_loader_reads(toy_dir, toy_cmvn_path, unsup, shards):  # noqa: F811
    reader = FeatureReader(toy_cmvn_path)
    cases = [(shards["lab"], ChunkDataset.from_cuts(toy_dir / "cuts.jsonl.gz", reader, kind="hard",
                                                    num_senones=NUM_SENONES, **CHUNK))]
    labels = shards["labels"]
    cases.append((shards["mach"], ChunkDataset.from_cuts(unsup["cuts"], reader, kind="soft", num_senones=NUM_SENONES,
                                                         labels=labels, keep=lambda c: c in labels, **CHUNK)))
    for root, ds in cases:
        want = {}
        for i in range(len(ds)):
            want.update(_rows(ds[[i]]))
        got = {}
        st = _stream(root, toy_cmvn_path)
        for batch in st.batches_from(0):
            rows = _rows(batch)
            assert not set(rows) & set(got)
            got.update(rows)
            if len(got) >= len(want):
                break
        assert set(got) == set(want)  # every chunk of every cut, once
        for key, tensors in want.items():
            for a, b in zip(tensors, got[key]):
                assert a.dtype == b.dtype and torch.equal(a, b), key


def test_round_trip_of_the_stored_arrays(toy_dir, shards):
    from lhotse import CutSet

    from asrkit.pseudo.trainshards import TrainShardSet, stored_feats

    cuts = {c.id: c for c in CutSet.from_file(toy_dir / "cuts.jsonl.gz")}
    recs = list(TrainShardSet(shards["lab"]))
    assert [js["id"] for js, _ in recs] == list(cuts)
    for js, arrays in recs:
        c = cuts[js["id"]]
        assert "feats" not in arrays and arrays["feats_lilcom"].dtype == np.uint8
        feats = stored_feats(arrays)
        assert np.array_equal(feats, load_frames(c)) and feats.dtype == np.float32
        assert np.array_equal(arrays["senones"], np.asarray(c.custom["senones"].load()))
        assert js["cut"] == json.loads(json.dumps(c.to_dict()))


def test_lilcom_and_float32_shards_give_the_same_batches(toy_cmvn_path, unsup, shards, tmp_path):  # noqa: F811
    sets = {codec: write_training_shards([unsup["cuts"]], tmp_path / codec, "soft", shards["labels"],
                                         feats_codec=codec)  # one shard each: the same shard order
            for codec in ("lilcom", "float32")}
    assert (sets["float32"]["feats_lilcom"], sets["float32"]["feats_float32"]) == (0, sets["float32"]["num_cuts"])
    assert sets["lilcom"]["shards"][0]["bytes"] < 0.6 * sets["float32"]["shards"][0]["bytes"]
    a = _stream(tmp_path / "lilcom", toy_cmvn_path, seed=2).batches_from(0)
    b = _stream(tmp_path / "float32", toy_cmvn_path, seed=2).batches_from(0)
    for _ in range(_stream(tmp_path / "lilcom", toy_cmvn_path, seed=2).num_batches(0) + 2):  # into the next epoch
        x, y = next(a), next(b)
        assert x["cut_ids"] == y["cut_ids"]
        for name in ("features", "topk_ids", "topk_probs", "mask", "starts"):
            assert torch.equal(x[name], y[name]), name


@pytest.mark.parametrize("buffer_size", [1, 3, 8, 100])
def test_every_chunk_once_per_epoch_bounded_buffer_max_frames_and_exact_resume(toy_cmvn_path, shards, buffer_size):
    st = _stream(shards["mach"], toy_cmvn_path, seed=3, buffer_size=buffer_size)
    epochs = []
    for e in range(3):
        n = st.num_batches(e)
        it = st.batches_from(e)
        batches = [next(it) for _ in range(n)]
        assert st.bucketer.max_buffered <= buffer_size
        keys = [k for b in batches for k in _rows(b)]
        assert len(keys) == len(set(keys)) and len(keys) == sum(len(_rows(b)) for b in batches)
        for b in batches:
            assert len(b["cut_ids"]) == 1 or b["features"].shape[0] * b["features"].shape[1] <= 120
        epochs.append([[(c, s) for c, s in zip(b["cut_ids"], b["starts"].tolist())] for b in batches])
        if e == 0:
            first = batches
    assert all(sorted(k for b in ep for k in b) == sorted(k for b in epochs[0] for k in b) for ep in epochs)
    if buffer_size > 1:
        assert epochs[0] != epochs[1]  # each epoch its own order
    # stop after k batches, restore (a fresh stream, as after a restart), the rest is the same, tensors too
    for k in range(len(first) + 1):
        again = _stream(shards["mach"], toy_cmvn_path, seed=3, buffer_size=buffer_size)
        it = again.batches_from(0, k)
        for want in first[k:]:
            got = next(it)
            assert got["cut_ids"] == want["cut_ids"]
            for name in ("features", "topk_ids", "topk_probs", "mask", "starts"):
                assert torch.equal(got[name], want[name]), name
        # and it goes on into the next epoch
        b = next(it)
        assert list(zip(b["cut_ids"], b["starts"].tolist())) == epochs[1][0]


def test_a_corrupt_shard_stops_the_stream_naming_it(toy_cmvn_path, shards, tmp_path):
    import shutil

    d = tmp_path / "mach"
    shutil.copytree(shards["mach"], d)
    p = d / "tshard-00001.bin"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    st = _stream(d, toy_cmvn_path)
    assert st.num_batches(0) > 0  # planning reads the sidecars only
    with pytest.raises(ShardError, match=str(p)):
        for _ in st.batches_from(0):
            pass


def _trainer(cfg, toy_cuts, toy_cmvn_path, shards, out, mode="interleaved", step_hook=None, tree=None):
    from asrkit.pseudo.shards import tree_checksum

    dirs = {"labelled": shards["lab"], "machine": shards["mach"],
            "tree_checksum": tree_checksum(tree) if tree is not None else None}
    return SslTrainer(cfg, None, None, toy_cuts, FeatureReader(toy_cmvn_path), out, SslConfig(mode), None,
                      step_hook=step_hook, shards=dirs)


@pytest.mark.parametrize("mode", ["interleaved", "segregated"])
def test_student_on_shards_resumes_mid_run_exactly(toy_cuts, toy_cmvn_path, unsup, shards, tmp_path,  # noqa: F811
                                                   mode):
    cfg = _cfg(loader="shards", shuffle_buffer=6, dropout=0.3, checkpoint_every=3, keep_last=2)

    def run(out, hook_log=None, kill_at=None, **kw):
        ref = [None]

        def hook(step):
            t = ref[0]
            if hook_log is not None:
                hook_log.append((step, t.current["kind"], tuple(t.current["cut_ids"]), tuple(t.current["starts"])))
            if step == kill_at:
                raise Kill()

        t = _trainer(cfg, toy_cuts, toy_cmvn_path, shards, out, mode, hook, **kw)
        ref[0] = t
        return t, t.run

    full_log = []
    full, go = run(tmp_path / "a", full_log, tree=unsup["tree"])
    go()
    per_epoch = sum(full._epoch_size(0))
    assert full.step == sum(sum(full._epoch_size(e)) for e in range(2)) and full.step > 6
    kinds = {k for _, k, _, _ in full_log}
    assert kinds == {"labelled", "machine"}
    kill_at = per_epoch + 4 if (per_epoch + 4) % 3 else per_epoch + 5
    t, go = run(tmp_path / "b", kill_at=kill_at)
    with pytest.raises(Kill):
        go()
    log = []
    resumed, go = run(tmp_path / "b", log)
    assert resumed.resumed_from is not None and per_epoch < resumed.step < kill_at
    go()
    assert resumed.step == full.step and log == full_log[-len(log):]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    ck = torch.load(tmp_path / "b" / "epoch-1.pt", weights_only=False)  # the streams' state is in the checkpoint
    assert set(ck["shard_streams"]) == {"labelled", "machine"}
    assert all(s["buffer_size"] == 6 for s in ck["shard_streams"].values())
    # each stream's next batch; (-1, -1): none left (segregated: every machine-labelled batch came first)
    assert all(s["epoch"] >= 0 or (mode, k) == ("segregated", "machine") for k, s in ck["shard_streams"].items())
    # a checkpoint whose streams were of other shards: refused, naming what differs
    ck["shard_streams"]["labelled"]["index_checksum"] = "blake2b:other"
    (tmp_path / "c").mkdir()
    torch.save(ck, tmp_path / "c" / "epoch-1.pt")
    with pytest.raises(ValueError, match="labelled stream index_checksum"):
        _trainer(cfg, toy_cuts, toy_cmvn_path, shards, tmp_path / "c", mode)
    # another buffer gives other batches: refused
    cfg.shuffle_buffer = 7
    with pytest.raises(ValueError, match="cannot resume"):
        _trainer(cfg, toy_cuts, toy_cmvn_path, shards, tmp_path / "b", mode)


def test_student_refuses_labels_of_another_tree_and_the_manifests_loader_is_unchanged(
        toy_cuts, toy_cmvn_path, unsup, shards, tmp_path):  # noqa: F811
    from asrkit.pseudo.shards import LabelMismatchError

    with pytest.raises(LabelMismatchError, match="senone tree"):
        _trainer(_cfg(loader="shards"), toy_cuts, toy_cmvn_path, shards, tmp_path / "x", tree=unsup["other_tree"])
    with pytest.raises(ValueError, match="speaker"):
        _trainer(_cfg(loader="shards", cmvn_mode="speaker"), toy_cuts, toy_cmvn_path, shards, tmp_path / "y")
    # a manifests-loader checkpoint cannot be resumed with the shard loader
    labels = open_pseudo_labels(unsup["pseudo"], NUM_SENONES, unsup["tree"])
    SslTrainer(_cfg(max_steps=2), toy_cuts, unsup["cuts"], toy_cuts, FeatureReader(toy_cmvn_path), tmp_path / "m",
               SslConfig("interleaved"), labels).run()
    with pytest.raises(ValueError, match="loader"):
        _trainer(_cfg(loader="shards", max_steps=2), toy_cuts, toy_cmvn_path, shards, tmp_path / "m")


def test_cli(toy_dir, toy_cmvn_path, unsup, tmp_path, capsys):  # noqa: F811
    from asrkit.bin import train_student, write_train_shards
    from asrkit.utils.atomic import is_done

    lab, mach = tmp_path / "lab", tmp_path / "mach"
    assert write_train_shards.main(["--kind", "hard", "--cuts", str(toy_dir / "cuts.jsonl.gz"), "--num-senones",
                                    str(NUM_SENONES), "--out-dir", str(lab)]) == 0
    assert write_train_shards.main(["--kind", "soft", "--cuts", str(unsup["cuts"]), "--pseudo-dir",
                                    str(unsup["pseudo"]), "--tree", str(unsup["tree"]), "--out-dir", str(mach)]) == 0
    assert "1 left out" in capsys.readouterr().out
    assert write_train_shards.main(["--kind", "hard", "--cuts", str(toy_dir / "cuts.jsonl.gz"),
                                    "--out-dir", str(lab)]) == 1  # exists: refused without --force
    cuts = str(toy_dir / "cuts.jsonl.gz")
    out = tmp_path / "student"
    assert train_student.main(["--mode", "interleaved", "--loader", "shards", "--labelled-shards", str(lab),
                               "--machine-shards", str(mach), "--tree", str(unsup["tree"]), "--dev-cuts", cuts,
                               "--cmvn", str(toy_cmvn_path), "--num-senones", str(NUM_SENONES), "--preset", "tiny",
                               "--num-epochs", "1", "--num-workers", "0", "--max-frames", "120", "--chunk-size",
                               "20", "--progress", "false", "--tensorboard", "false", "--out-dir", str(out)]) == 0
    assert is_done(out / "best.pt")
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["loader"] == "shards"


def test_cli_needs_the_shards_with_the_shard_loader(toy_dir, toy_cmvn_path, tmp_path, capsys):
    from asrkit.bin import train_student

    with pytest.raises(SystemExit):
        train_student.main(["--mode", "interleaved", "--loader", "shards", "--labelled-shards", str(tmp_path),
                            "--cmvn", str(toy_cmvn_path), "--num-senones", str(NUM_SENONES),
                            "--out-dir", str(tmp_path / "x")])
    assert "needs --machine-shards" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the default loader still needs its manifests
        train_student.main(["--mode", "supervised", "--cmvn", str(toy_cmvn_path), "--num-senones",
                            str(NUM_SENONES), "--out-dir", str(tmp_path / "y")])
    assert "--labelled-cuts" in capsys.readouterr().err


def test_cli_writes_the_chosen_feature_codec(toy_dir, tmp_path):
    from asrkit.bin.write_train_shards import main

    for codec, want in (("lilcom", "feats_lilcom"), ("float32", "feats_float32")):
        out = tmp_path / codec
        assert main(["--kind", "hard", "--cuts", str(toy_dir / "cuts.jsonl.gz"), "--num-senones", str(NUM_SENONES),
                     "--feats-codec", codec, "--out-dir", str(out)]) == 0
        index = json.loads((out / "index.json").read_text())
        assert index[want] == index["num_cuts"] > 0


def test_writer_logs_progress(toy_dir, tmp_path, caplog, monkeypatch):
    import logging

    from asrkit.nnet import shard_loader

    monkeypatch.setattr(shard_loader, "PROGRESS_EVERY", 2)
    with caplog.at_level(logging.INFO, logger="asrkit.nnet.shard_loader"):
        index = write_training_shards([toy_dir / "cuts.jsonl.gz"], tmp_path / "lab", "hard", num_senones=NUM_SENONES)
    lines = [r.getMessage() for r in caplog.records if "so far" in r.getMessage()]
    assert len(lines) == index["num_cuts"] // 2 and lines[0].endswith("2 cuts in 0 shards so far (2 lilcom, 0 float32)")
