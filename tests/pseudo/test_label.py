import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from asrkit.pseudo.label import PlanMismatchError, label_cuts, make_batches, merge_indices
from asrkit.pseudo.shards import PseudoLabelReader

REPO = Path(__file__).resolve().parents[2]


def _files(d: Path):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def _run(out, teacher, data, job=1, num_jobs=1, feature_fn=None, **kw):
    cuts, feats = data
    fn = feature_fn or (lambda c: feats[c.id])
    return label_cuts(teacher, cuts, fn, out, shard_size=5, k=8, job=job, num_jobs=num_jobs, **kw)


@pytest.fixture
def reference(tmp_path, teacher, data):
    ref = tmp_path / "ref"
    _run(ref, teacher, data)
    merge_indices(ref)
    return _files(ref)


def test_make_batches_sorted_and_bounded():
    lens = [5, 30, 30, 2, 100, 7]
    batches = make_batches(lens, batch_frames=60, max_batch_size=2)
    assert [i for b in batches for i in b] == [4, 1, 2, 5, 0, 3]
    assert batches[0] == [4]  # longer than batch_frames: alone
    for b in batches:
        assert len(b) <= 2 and (len(b) == 1 or len(b) * lens[b[0]] <= 60)


def test_parallel_jobs_give_the_same_output_as_one_job(tmp_path, teacher, data, reference):
    out = tmp_path / "par"
    for job in (1, 2, 3):
        _run(out, teacher, data, job=job, num_jobs=3)
    with pytest.raises(FileNotFoundError, match="jobs"):
        bad = tmp_path / "partial_jobs"
        _run(bad, teacher, data, job=1, num_jobs=2)
        merge_indices(bad)
    merge_indices(out)
    got = _files(out)
    same = {n: b for n, b in got.items() if not n.startswith("index.job") and not n.startswith(".index.job")}
    ref = {n: b for n, b in reference.items() if not n.startswith("index.job") and not n.startswith(".index.job")}
    assert same == ref  # shards, sidecars and index.json byte-identical


class Killed(BaseException):
    pass


def test_resume_after_kill_is_byte_identical(tmp_path, teacher, data, reference):
    cuts, feats = data
    out = tmp_path / "killed"

    def dies_in_shard_2(c):
        if c.id == "utt012":  # shard 2 (cuts 10..14)
            raise Killed()
        return feats[c.id]

    with pytest.raises(Killed):
        _run(out, teacher, data, feature_fn=dies_in_shard_2)
    assert (out / "shard-00001.bin").exists() and not (out / "shard-00002.bin").exists()
    mtime = (out / "shard-00000.bin").stat().st_mtime_ns
    # a partial temporary file from a kill during the write, and a shard renamed but not marked done
    (out / ".shard-00002.tmpabc123.bin").write_bytes(b"ASRKPSL1 partial")
    (out / "shard-00003.bin").write_bytes(b"garbage")
    _run(out, teacher, data)
    merge_indices(out)
    assert _files(out) == reference
    assert (out / "shard-00000.bin").stat().st_mtime_ns == mtime  # finished shards were skipped


def test_resume_after_sigkill_subprocess(tmp_path, reference):
    out = tmp_path / "sigkill"
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
        import torch
        from conftest import TinyTeacher, make_cuts
        from asrkit.pseudo.label import label_cuts, merge_indices
        torch.manual_seed(0)
        teacher = TinyTeacher()
        cuts, feats = make_cuts()
        kill = sys.argv[1] == "kill"
        def fn(c):
            if kill and c.id == "utt017":
                os.kill(os.getpid(), signal.SIGKILL)
            return feats[c.id]
        label_cuts(teacher, cuts, fn, {str(out)!r}, shard_size=5, k=8)
        merge_indices({str(out)!r})
    """))
    r = subprocess.run([sys.executable, str(script), "kill"], capture_output=True)
    assert r.returncode == -9
    assert sorted(p.name for p in out.glob("shard-*.bin")) == [f"shard-0000{i}.bin" for i in range(3)]
    r = subprocess.run([sys.executable, str(script), "resume"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert _files(out) == reference


def test_changed_plan_refused(tmp_path, teacher, data):
    _run(tmp_path, teacher, data)
    with pytest.raises(PlanMismatchError, match="k: on disk 8, now 4"):
        label_cuts(teacher, data[0], lambda c: data[1][c.id], tmp_path, shard_size=5, k=4)


class NanTeacher(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, lengths=None):
        out, _ = self.inner(x, lengths)
        bad = (x[:, :1, 0] == 12345.0)  # rows whose first frame carries the sentinel
        return torch.where(bad[..., None], torch.full_like(out, float("nan")), out)


def test_bad_cuts_skipped_counted_with_ids(tmp_path, teacher, data):
    cuts, feats = data
    feats = dict(feats)
    feats["utt003"] = np.zeros((0, 192), np.float32)  # 0 frames
    feats["utt007"] = feats["utt007"].copy()
    feats["utt007"][2, 5] = np.nan  # NaN in features
    feats["utt011"] = feats["utt011"].copy()
    feats["utt011"][0, 0] = 12345.0  # NaN in the teacher's outputs
    del feats["utt019"]  # features fail to load

    index = label_cuts(NanTeacher(teacher), cuts, lambda c: feats[c.id], tmp_path, shard_size=5, k=8)
    merged = merge_indices(tmp_path)
    skipped = {s["id"]: s["reason"] for sh in merged["shards"] for s in sh["skipped"]}
    assert set(skipped) == {"utt003", "utt007", "utt011", "utt019"}
    assert skipped["utt003"] == "0 frames"
    assert "NaN" in skipped["utt007"] and "non-finite" in skipped["utt011"]
    assert skipped["utt019"].startswith("features failed to load: KeyError")
    assert merged["totals"]["num_skipped"] == 4 == index["totals"]["num_skipped"]
    assert merged["totals"]["utts"] == len(cuts) - 4
    reader = PseudoLabelReader(tmp_path)
    assert set(reader.cut_ids()) == {c.id for c in cuts} - set(skipped)
    # the other rows of the NaN batch are intact
    for cid, ids, probs in reader:
        assert torch.isfinite(probs).all()


def test_confidence_filter_counts(tmp_path, teacher, data, reference):
    base = json.loads(reference["index.json"])
    conf = {}
    for sh in base["shards"]:
        assert sh["stats"]["utts"] == len(sh["utts"])
    reader_dir = tmp_path / "base"
    _run(reader_dir, teacher, data)
    merge_indices(reader_dir)
    for cid, ids, probs in PseudoLabelReader(reader_dir, renormalise=False):
        conf[cid] = float(probs[:, 0].double().mean())
    thr = float(np.median(list(conf.values())))
    out = tmp_path / "filt"
    _run(out, teacher, data, min_confidence=thr)
    merged = merge_indices(out)
    expect = sorted(c for c, v in conf.items() if v < thr)
    got = sorted(f["id"] for sh in merged["shards"] for f in sh["filtered"])
    assert got == expect and merged["totals"]["num_filtered"] == len(expect) > 0
    assert merged["totals"]["utts"] == len(conf) - len(expect)
    assert merged["totals"]["mean_top1"] > base["totals"]["mean_top1"]
    assert set(PseudoLabelReader(out).cut_ids()) == set(conf) - set(expect)


def test_stats_definitions(tmp_path, teacher, data, reference):
    _run(tmp_path, teacher, data)
    index = merge_indices(tmp_path)
    top1, ent, mass, n = 0.0, 0.0, 0.0, 0
    for cid, ids, probs in PseudoLabelReader(tmp_path, renormalise=False):
        p = probs.double()
        q = p / p.sum(-1, keepdim=True)
        top1 += float(p[:, 0].sum())
        ent += float(-(q * q.clamp(min=1e-300).log()).sum())
        n += len(p)
    t = index["totals"]
    assert t["frames"] == n
    assert abs(t["mean_top1"] - top1 / n) < 1e-9
    assert abs(t["mean_entropy"] - ent / n) < 1e-9
    assert 0 < t["mean_mass"] <= 1.001 and t["mean_top1"] <= t["mean_mass"]
    # shard totals add up
    assert sum(s["stats"]["frames"] for s in index["shards"]) == n


def test_teacher_temperature_flattens_labels(tmp_path, teacher, data):
    a, b = tmp_path / "t1", tmp_path / "t3"
    ia = _run(a, teacher, data)
    ib = _run(b, teacher, data, temperature=3.0)
    assert ib["temperature"] == 3.0
    assert ib["totals"]["mean_top1"] < ia["totals"]["mean_top1"]
    assert ib["totals"]["mean_entropy"] > ia["totals"]["mean_entropy"]
