"""Stage 6 on train_sup's speed-perturbed copies (--speed-perturb): each copy is aligned by the triphone GMM
through the path of any labelled set other than the GMM's training set, its targets obey the frame rule on
the copy's own frames, a copy whose alignment fails is left out, counted and named, and train_sup's own
outputs (tree, priors, targets) are those of a run without the copies."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

FACTORS = (0.9, 1.1)
SP_SETS = [f"train_sup_sp{f}" for f in FACTORS]


@pytest.fixture(scope="module")
def perturbed(system, tmp_path_factory):
    """Feature dirs holding the fixture's train_sup and dev and two copies of stage 1's train_sup, made as the
    recipe makes them (perturb_speed, then compute_features of each copy: fbank and MFCC). That train_sup
    manifest also holds dev's dv0002, whose 60 words cannot fit its audio: its copies' alignments fail."""
    from lhotse import CutSet

    from asrkit.data.perturb import write_perturbed_sets
    from asrkit.features import compute_features

    d = system["d"]
    root = tmp_path_factory.mktemp("sp")
    src = [c.drop_features() for c in CutSet.from_file(d / "mfcc" / "cuts_train_sup.jsonl.gz")]
    bad = next(c for c in CutSet.from_file(d / "mfcc" / "cuts_dev.jsonl.gz") if c.id.startswith("dv0002"))
    manifest = root / "manifests" / "cuts_train_sup.jsonl.gz"
    manifest.parent.mkdir()
    CutSet.from_cuts(src + [bad.drop_features()]).to_file(manifest)
    copies = write_perturbed_sets(manifest, "train_sup", FACTORS, root / "manifests")
    for kind in ("mfcc", "fbank"):
        (root / kind).mkdir()
        for name in ("train_sup", "dev"):
            (root / kind / f"cuts_{name}.jsonl.gz").symlink_to(d / kind / f"cuts_{name}.jsonl.gz")
        for name, path in zip(SP_SETS, copies):
            compute_features(path, root / kind, name, kind=kind, progress_bar=False)
    return {"root": root, "bad": {s: f"{bad.id}_sp{f}" for s, f in zip(SP_SETS, FACTORS)}, "num_src": len(src) + 1}


def _make(system, feats, out, sets):
    from asrkit.bin import make_senones

    d = system["d"]
    return make_senones.main(["--ali-dir", str(d / "tri"), "--lang", str(system["lang_senone"]),
                              "--lang-gmm", str(system["lang"]), "--mfcc-dir", str(feats / "mfcc"),
                              "--fbank-dir", str(feats / "fbank"), "--cmvn", str(d / "cmvn.npz"), "--sets", sets,
                              "--num-leaves", "60", "--tree-min-count", "8", "--tree-thresh", "20",
                              "--out-dir", str(out), "--nj", "2"])


def test_copies_get_targets_of_their_own_frames_and_a_failed_one_is_left_out(system, perturbed, tmp_path, capsys):
    from lhotse import CutSet

    from asrkit.features import num_frames
    from asrkit.nnet.dataset import check_cut

    feats, out = perturbed["root"], tmp_path / "senone"
    assert _make(system, feats, out, ",".join(["train_sup", "dev", *SP_SETS])) == 0
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())["sets"]
    for s, f in zip(SP_SETS, FACTORS):
        fbank = {c.id: c for c in CutSet.from_file(feats / "fbank" / f"cuts_{s}.jsonl.gz")}
        kept = list(CutSet.from_file(out / f"cuts_{s}.jsonl.gz"))
        # every copy but the impossible one has targets, one 30 ms id per 3 of the copy's 10 ms frames
        assert sorted(c.id for c in kept) == sorted(set(fbank) - {perturbed["bad"][s]})
        assert len(kept) == perturbed["num_src"] - 1
        for c in kept:
            n = num_frames(c.duration, 16000)
            assert c.id.endswith(f"_sp{f}") and c.num_frames == fbank[c.id].num_frames == n
            tgt = c.custom["senones"].load()
            assert tgt.dtype == np.int16 and len(tgt) == math.ceil(n / 3) == check_cut(c)
        # the failed alignment: counted, logged with the copy's id, listed with its reason
        left = dict(line.split(" ", 1) for line in (out / f"left_out_{s}.txt").read_text().splitlines())
        assert list(left) == [perturbed["bad"][s]] and left[perturbed["bad"][s]].startswith("alignment failed")
        assert f"{perturbed['bad'][s]} left out" in err
        assert summary[s] == {"cuts": len(kept), "frames": sum(math.ceil(c.num_frames / 3) for c in kept),
                              "left_out": 1}
    # the copies were aligned here, by the triphone GMM, into alignments of their own
    for s in SP_SETS:
        assert (out / f"ali_{s}.pt").exists()

    # train_sup's outputs are those of the recipe without --speed-perturb: the copies add sets, nothing else
    plain = tmp_path / "plain"
    assert _make(system, feats, plain, "train_sup,dev") == 0
    for name in ("tree", "senone_counts.npy", "occupancy.txt"):
        assert (out / name).read_bytes() == (plain / name).read_bytes(), name
    for s in ("train_sup", "dev"):
        a = {c.id: c.custom["senones"].load() for c in CutSet.from_file(out / f"cuts_{s}.jsonl.gz")}
        b = {c.id: c.custom["senones"].load() for c in CutSet.from_file(plain / f"cuts_{s}.jsonl.gz")}
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), s
    assert not list(plain.glob("*_sp*"))
