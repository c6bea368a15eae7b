"""Realignment with a network (asrkit.senone.realign, asrkit.bin.realign_nnet) on the tiny digit system:
one-hot posteriors copied from stage 6's GMM-derived targets give those targets back exactly; a network's
alignment gives frame-rule targets in stage 6's format; a failing utterance is counted and named."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def senone_dir(system, tmp_path_factory):
    from asrkit.senone.stage import SenoneConfig, make_senones

    d = system["d"]
    out = tmp_path_factory.mktemp("realign") / "senone"
    make_senones(ali_dir=d / "tri", lang=system["lang_senone"], lang_gmm=system["lang"], mfcc_dir=d / "mfcc",
                 fbank_dir=d / "fbank", cmvn=d / "cmvn.npz", sets=["train_sup", "dev"], G=system["G"], out_dir=out,
                 config=SenoneConfig(num_leaves=60, min_count=8, thresh=20))
    return out


def _targets(manifest):
    from lhotse import CutSet

    return {c.id: np.asarray(c.custom["senones"].load()) for c in CutSet.from_file(manifest)}


def test_one_hot_posteriors_reproduce_the_gmm_targets(system, senone_dir, tmp_path):
    """Posteriors that put all mass on stage 6's senone (floored at 1e-30 for the logarithm), minus the log
    priors as for any network, realign every cut of train_sup and dev to exactly its GMM-derived targets."""
    from asrkit.nnet.infer import log_priors_from_counts
    from asrkit.senone.realign import realign

    ref = {s: _targets(senone_dir / f"cuts_{s}.jsonl.gz") for s in ("train_sup", "dev")}
    all_ref = {**ref["train_sup"], **ref["dev"]}
    counts = np.load(senone_dir / "senone_counts.npy")
    log_priors = log_priors_from_counts(counts)

    def one_hot_scorer(cut):
        t = all_ref[cut.id].astype(np.int64)
        post = np.full((len(t), len(counts)), 1e-30, dtype=np.float64)
        post[np.arange(len(t)), t] = 1.0
        return (np.log(post) - log_priors[None, :]).astype(np.float32)

    out = tmp_path / "senone_realign"
    summary = realign(senone_dir=senone_dir, lang=system["lang_senone"], sets=["train_sup", "dev"],
                      scorer=one_hot_scorer, out_dir=out)
    for s in ("train_sup", "dev"):
        got = _targets(out / f"cuts_{s}.jsonl.gz")
        assert set(got) == set(ref[s]) and len(got) > 0
        for u, t in got.items():
            assert t.dtype == np.int16
            np.testing.assert_array_equal(t, ref[s][u], err_msg=u)
        assert summary.sets[s]["left_out"] == 0 and summary.sets[s]["changed_share"] == 0.0
    # the same targets, so the same priors; the model files and graph are the source's
    np.testing.assert_array_equal(np.load(out / "senone_counts.npy"), counts)
    assert (out / "tree").read_bytes() == (senone_dir / "tree").read_bytes()
    assert (out / "graph").is_symlink() and (out / "graph" / "HCLG.fst").exists()


def test_network_realignment_targets_and_failures(system, senone_dir, tmp_path, capsys):
    """A (random) BLSTM realigns through the CLI: every kept cut gets int16 targets of T = ceil(n/3) frames
    that the training data check accepts; a cut whose transcript cannot fit its frames is left out, counted
    and named with its reason; a re-run skips what is done."""
    import json
    import shutil

    from lhotse import CutSet
    from lhotse.utils import fastcopy

    from asrkit.bin import realign_nnet
    from asrkit.features.stack import num_stacked_frames
    from asrkit.nnet.dataset import check_cut
    from asrkit.testing.recipe import write_random_network

    num_pdfs = len(np.load(senone_dir / "senone_counts.npy"))
    src = tmp_path / "senone"  # the stage 6 dir with one transcript far too long for its audio
    src.mkdir()
    for name in ("tree", "final.mdl", "senone_counts.npy", "cuts_dev.jsonl.gz"):
        (src / name).symlink_to(senone_dir / name)
    cuts = list(CutSet.from_file(senone_dir / "cuts_train_sup.jsonl.gz"))
    bad = cuts[3].id
    cuts[3] = fastcopy(cuts[3], supervisions=[fastcopy(cuts[3].supervisions[0], text=" ".join(["seven"] * 60))])
    CutSet.from_cuts(cuts).to_file(src / "cuts_train_sup.jsonl.gz")
    model = tmp_path / "teacher" / "best.pt"
    write_random_network(model, num_pdfs, bidirectional=True, seed=3)
    out = tmp_path / "senone_realign"
    args = ["--model", str(model), "--senone-dir", str(src), "--lang", str(system["lang_senone"]),
            "--cmvn", str(system["d"] / "cmvn.npz"), "--sets", "train_sup,dev", "--out-dir", str(out),
            "--device", "cpu"]
    assert realign_nnet.main(args) == 0
    got = {c.id: c for c in CutSet.from_file(out / "cuts_train_sup.jsonl.gz")}
    assert set(got) == {c.id for c in cuts} - {bad}
    for c in got.values():
        t = c.custom["senones"].load()
        assert t.dtype == np.int16 and len(t) == num_stacked_frames(c.num_frames) == check_cut(c)
        assert t.min() >= 0 and t.max() < num_pdfs
    left = dict(line.split(" ", 1) for line in (out / "left_out_train_sup.txt").read_text().splitlines())
    assert list(left) == [bad] and "alignment failed: too short" in left[bad]
    err = capsys.readouterr().err
    assert f"cut {bad} left out of the realigned targets" in err
    info = json.loads((out / "realign.json").read_text())
    assert info["sets"]["train_sup"]["left_out"] == 1 and info["sets"]["train_sup"]["aligned"] == len(cuts) - 1
    assert info["left_out"]["train_sup"] == left
    assert info["sets"]["train_sup"]["changed_share"] > 0.1  # a random network moves the boundaries
    counts = np.load(out / "senone_counts.npy")  # the priors are the realigned training targets'
    assert counts.sum() == sum(num_stacked_frames(c.num_frames) for c in got.values())
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "tree", out / "final.mdl", out / "cuts_dev.jsonl.gz")}
    assert realign_nnet.main(args) == 0  # up to date: nothing rewritten (networks trained on it stay fresh)
    assert "is up to date" in capsys.readouterr().err
    assert stamps == {n: (out / n).stat().st_mtime_ns for n in stamps}
    write_random_network(model, num_pdfs, bidirectional=True, seed=4)  # a teacher trained again: redone
    assert realign_nnet.main(args) == 0
    err = capsys.readouterr().err
    assert "is up to date" not in err and "realigned 19 of 20 cuts" in err
    assert stamps["tree"] == (out / "tree").stat().st_mtime_ns
    (src / "cuts_dev.jsonl.gz").unlink()  # dev's source made again: dev alone is redone
    shutil.copyfile(senone_dir / "cuts_dev.jsonl.gz", src / "cuts_dev.jsonl.gz")
    assert realign_nnet.main(args) == 0
    err = capsys.readouterr().err
    assert "cuts_train_sup.jsonl.gz is done, skipped" in err and "dev: realigned" in err
    info = json.loads((out / "realign.json").read_text())  # the record keeps train_sup's run
    assert set(info["sets"]) == {"train_sup", "dev"} and info["sets"]["train_sup"]["left_out"] == 1
