"""Stage 6: 10 -> 30 ms conversion (hand-made alignments) and make_senones end to end on a tiny espeak corpus."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from asrkit.senone.convert import convert_to_30ms, instance_ids, lost_phones


# ----------------------------------------------------------------------------- conversion, hand-made


def _ali(lengths, phones):
    """Per-frame phones and phone starts of consecutive instances."""
    ph = np.concatenate([np.full(k, p, dtype=np.int32) for k, p in zip(lengths, phones)])
    st = np.zeros(len(ph), dtype=bool)
    st[np.cumsum([0] + list(lengths[:-1]))] = True
    return ph, st


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 115, 116, 117])
def test_frame_rule_exact(n):
    rng = np.random.default_rng(n)
    phones = rng.integers(1, 9, size=n).astype(np.int32)
    p30, s30, cc = convert_to_30ms(phones)
    T = math.ceil(n / 3)
    assert len(p30) == len(s30) == T == cc.frames30
    for t in range(T):
        assert p30[t] == phones[min(3 * t + 1, n - 1)]
    assert s30[0]


def test_phone_change_starts_a_phone():
    ph, st = _ali([3, 4, 3, 3], [1, 2, 3, 4])  # label frames 1 4 7 10 12
    p30, s30, cc = convert_to_30ms(ph, st)
    assert p30.tolist() == [1, 2, 3, 4, 4]
    assert s30.tolist() == [True, True, True, True, False]
    assert cc.phones10 == 4 and cc.phones30 == 4 and cc.lost == 0 and cc.single_frame == 3


def test_repeated_phone_boundary_follows_the_label_frame():
    # A A with the boundary at 10 ms frame 5 = 3*1 + 2: 30 ms frame 1 (label frame 4) is still the first
    # instance, frame 2 (label frame 7) starts the second one.
    ph, st = _ali([5, 4], [2, 2])
    p30, s30, cc = convert_to_30ms(ph, st)
    assert p30.tolist() == [2, 2, 2] and s30.tolist() == [True, False, True]
    assert cc.phones10 == cc.phones30 == 2
    # boundary at 3t+1 exactly (frame 4): 30 ms frame 1 starts the second instance
    ph, st = _ali([4, 5], [2, 2])
    _, s30, _ = convert_to_30ms(ph, st)
    assert s30.tolist() == [True, True, False]
    # without the 10 ms starts a repeated phone is one instance
    _, s30, cc = convert_to_30ms(ph)
    assert s30.tolist() == [True, False, False] and cc.phones10 == 1


def test_instances_are_cut_at_phone_changes_even_without_a_start():
    ph = np.array([1, 1, 1, 2, 2, 2])
    st = np.array([True, False, False, False, False, False])
    assert instance_ids(ph, st).tolist() == [0, 0, 0, 1, 1, 1]


def test_short_phones_are_counted_as_lost():
    ph, st = _ali([2, 1, 3, 2, 2], [1, 2, 3, 4, 5])  # phone 2 at frame 2, phone 4 at frames 6-7
    p30, _, cc = convert_to_30ms(ph, st)
    assert p30.tolist() == [1, 3, 4, 5]  # label frames 1 4 7 9
    assert cc.lost == 1 and lost_phones(ph, st).tolist() == [1]


def test_no_phone_lost_with_three_frame_minimum():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 12))
        lengths = rng.integers(3, 9, size=k).tolist()
        phones = rng.integers(1, 4, size=k).tolist()  # repeats on purpose
        ph, st = _ali(lengths, phones)
        p30, s30, cc = convert_to_30ms(ph, st)
        assert cc.lost == 0 and cc.phones30 == k and len(p30) == math.ceil(len(ph) / 3)
        # 30 ms instances follow the 10 ms ones in order
        assert p30[s30].tolist() == phones


def test_frame_count_mismatch_is_refused():
    from asrkit.senone.stage import check_frame_counts

    def cut(n, dur=1.0):
        return SimpleNamespace(id="u1", has_features=True, duration=dur,
                               features=SimpleNamespace(num_frames=n, sampling_rate=16000))

    assert check_frame_counts(cut(100), cut(100)) == 100
    with pytest.raises(ValueError, match="u1.*MFCC has 101 frames and fbank 100"):
        check_frame_counts(cut(100), cut(101))
    with pytest.raises(ValueError, match="u1.*frame rule"):
        check_frame_counts(cut(99), cut(99))


# ----------------------------------------------------------------------------- end to end


def _args(s, out, extra=()):
    d = s["d"]
    return ["--ali-dir", str(d / "tri"), "--lang", str(s["lang_senone"]), "--lang-gmm", str(s["lang"]),
            "--mfcc-dir", str(d / "mfcc"), "--fbank-dir", str(d / "fbank"), "--cmvn", str(d / "cmvn.npz"),
            "--sets", "train_sup,dev", "--out-dir", str(out), "--nj", "2", *extra]


def test_make_senones_end_to_end(system, tmp_path, capsys):
    from lhotse import CutSet

    from asrkit.bin import make_senones
    from asrkit.features.stack import num_stacked_frames
    from asrkit.fst import kaldi_hmm_gmm
    from asrkit.hmm import load_model, read_tree
    from asrkit.nnet.dataset import check_cut
    from asrkit.utils.atomic import is_done

    out = tmp_path / "senone"
    assert make_senones.main(_args(system, out, ["--num-leaves", "500", "--tree-min-count", "8",
                                                 "--tree-thresh", "20", "--G", str(system["G"])])) == 0
    # the tree: Kaldi binary, loads in kaldi_hmm_gmm, TransitionModel over the one-state topo agrees
    cd = read_tree(out / "tree")
    assert (cd.context_width, cd.central_position) == (3, 1)
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read((system["lang_senone"] / "topo").read_text())
    tm = kaldi_hmm_gmm.TransitionModel(cd, topo)
    num_pdfs = int(tm.num_pdfs)
    assert num_pdfs == cd.num_pdfs
    mdl = load_model(out / "final.mdl")
    assert int(mdl.transition_model.num_pdfs) == num_pdfs and mdl.extra["format"] == "asrkit-hmm-v1"
    assert 10 < num_pdfs < 500  # the data support far fewer than asked ...
    err = capsys.readouterr().err
    assert "fewer than the 500 asked" in err  # ... and the log says so
    # targets: every kept cut has exactly ceil(n/3) int16 ids < num_pdfs
    kept = {}
    for s in ("train_sup", "dev"):
        assert is_done(out / f"cuts_{s}.jsonl.gz")
        cuts = CutSet.from_file(out / f"cuts_{s}.jsonl.gz")
        for c in cuts:
            tgt = c.custom["senones"].load()
            assert tgt.dtype == np.int16
            assert len(tgt) == num_stacked_frames(c.num_frames) == check_cut(c)
            assert tgt.min() >= 0 and tgt.max() < num_pdfs
        kept[s] = {c.id: c for c in cuts}
    assert len(kept["train_sup"]) == 20
    # the two bad dev utterances are left out and reported with their reason
    utt = {c.split("-")[0]: c for c in kept["dev"]}  # lhotse's cut ids: <recording>-<n>
    assert set(utt) == {"dv0000", "dv0003", "dv0004", "dv0005"}
    left = dict(line.split(" ", 1) for line in (out / "left_out_dev.txt").read_text().splitlines())
    left = {k.split("-")[0]: (k, v) for k, v in left.items()}
    assert set(left) == {"dv0001", "dv0002"}
    assert "missing from the lexicon: banana" in left["dv0001"][1] and "alignment failed" in left["dv0002"][1]
    assert f"{left['dv0001'][0]} left out" in err and f"{left['dv0002'][0]} left out" in err
    # priors: raw counts over the train frames
    counts = np.load(out / "senone_counts.npy")
    assert counts.dtype == np.float64 and counts.shape == (num_pdfs,)
    train_frames = sum(num_stacked_frames(c.num_frames) for c in kept["train_sup"].values())
    assert counts.sum() == train_frames
    occ = dict(line.split(" ", 1) for line in (out / "occupancy.txt").read_text().splitlines())
    assert int(occ["senones"]) == num_pdfs and int(occ["phones_lost_10ms_to_30ms"]) == 0
    assert 0.0 < float(occ["silence_frame_share"]) < 1.0
    # the targets are the tree applied to the converted GMM alignment (spot check one cut)
    from asrkit.gmm import GmmModel, load_alignments
    from asrkit.senone.convert import convert_to_30ms
    from asrkit.tree import kaldi_to_tree

    gmm = GmmModel.load(system["d"] / "tri" / "final.mdl")
    cid = next(c for c in kept["train_sup"] if c.startswith("tr0003"))
    ali = load_alignments(system["d"] / "tri")["alis"][cid].astype(np.int64)
    p30, s30, _ = convert_to_30ms(gmm.info.phone[ali], gmm.info.phone_starts(ali))
    tree = kaldi_to_tree(read_tree(out / "tree"))
    exp = tree.frame_pdfs(p30, np.zeros_like(p30), phone_starts=s30)
    assert np.array_equal(kept["train_sup"][cid].custom["senones"].load(), exp)
    # the senone HCLG
    assert is_done(out / "graph") and (out / "graph" / "HCLG.fst").stat().st_size > 0
    # a re-run skips what is done
    opts = ["--num-leaves", "500", "--tree-min-count", "8", "--tree-thresh", "20", "--G", str(system["G"])]
    capsys.readouterr()
    assert make_senones.main(_args(system, out, opts)) == 0
    err = capsys.readouterr().err
    assert "is done, skipped" in err and "aligned" not in err and "tree statistics" not in err
    # ... with the same options: other tree options stop it, naming them (--force redoes the tree)
    assert make_senones.main(_args(system, out, ["--G", str(system["G"])])) == 1
    assert "option --num-leaves: 500 -> 3000" in capsys.readouterr().err


def test_make_senones_fbank_tree_features(system, tmp_path):
    from asrkit.senone.stage import SenoneConfig, make_senones

    d = system["d"]
    s = make_senones(ali_dir=d / "tri", lang=system["lang_senone"], lang_gmm=system["lang"], mfcc_dir=d / "mfcc",
                     fbank_dir=d / "fbank", cmvn=d / "cmvn.npz", sets=["train_sup"], G=None, out_dir=tmp_path / "s",
                     config=SenoneConfig(num_leaves=30, min_count=8, thresh=20, tree_feats="fbank"))
    assert 0 < s.num_senones <= 30 and s.sets["train_sup"]["cuts"] == 20
    assert np.load(tmp_path / "s" / "tree_stats.npz")["sums"].shape[1] == 192
    assert not (tmp_path / "s" / "graph").exists()


def test_text_from_another_manifest_gives_oracle_targets(system, tmp_path):
    """An unlabelled copy of dev (no text) with its transcripts from a separate manifest gets the same
    targets as dev itself (--text-from SET=FEATSET:MANIFEST); a cut the manifest lacks is left out. (The cut
    dropped from the manifest is one dev leaves out before aligning too, its unknown word: per-speaker CMN
    over the aligned cuts would otherwise make the two alignments differ slightly.)"""
    from lhotse import CutSet
    from lhotse.utils import fastcopy

    from asrkit.bin import make_senones

    d = system["d"]
    feats = tmp_path / "feats"
    for kind in ("mfcc", "fbank"):
        (feats / kind).mkdir(parents=True)
        for name in ("train_sup", "dev"):
            (feats / kind / f"cuts_{name}.jsonl.gz").symlink_to(d / kind / f"cuts_{name}.jsonl.gz")
        cuts = CutSet.from_file(d / kind / f"cuts_dev.jsonl.gz")
        CutSet.from_cuts([fastcopy(c, supervisions=[fastcopy(s, text=None) for s in c.supervisions])
                          for c in cuts]).to_file(feats / kind / "cuts_unsupx.jsonl.gz")
    dev = list(CutSet.from_file(d / "mfcc" / "cuts_dev.jsonl.gz"))
    dropped = next(c.id for c in dev if c.id.startswith("dv0001"))
    CutSet.from_cuts([c for c in dev if c.id != dropped]).to_file(tmp_path / "oracle.jsonl.gz")
    args = _args(system, tmp_path / "senone", ["--num-leaves", "60", "--tree-min-count", "8", "--tree-thresh", "20"])
    args[args.index("--mfcc-dir") + 1] = str(feats / "mfcc")
    args[args.index("--fbank-dir") + 1] = str(feats / "fbank")
    args[args.index("--sets") + 1] = "train_sup,dev,unsup_oracle"
    args += ["--text-from", f"unsup_oracle=unsupx:{tmp_path / 'oracle.jsonl.gz'}"]
    assert make_senones.main(args) == 0
    out = tmp_path / "senone"
    ref = {c.id: c.custom["senones"].load() for c in CutSet.from_file(out / "cuts_dev.jsonl.gz")}
    got = {c.id: c.custom["senones"].load() for c in CutSet.from_file(out / "cuts_unsup_oracle.jsonl.gz")}
    assert set(got) == set(ref) and len(got) == 4
    for k, v in got.items():
        np.testing.assert_array_equal(v, ref[k])
    left = dict(line.split(" ", 1) for line in (out / "left_out_unsup_oracle.txt").read_text().splitlines())
    assert left[dropped] == "no transcript" and len(left) == 2  # + dv0002, whose alignment fails
    with pytest.raises(SystemExit):  # a missing transcript manifest is a usage error
        make_senones.main(args[:-2] + ["--text-from", f"unsup_oracle=unsupx:{tmp_path / 'missing.jsonl.gz'}"])
