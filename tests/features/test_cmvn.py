import numpy as np
import pytest
import torch

from asrkit.features import (
    CmvnStats,
    FeatureReader,
    apply_cmvn,
    compute_cmvn,
    compute_features,
    load_cmvn,
    load_stacked_features,
    num_frames,
    num_stacked_frames,
    stack_frames,
    tile_cmvn,
)


@pytest.fixture
def fbank_cuts(tmp_path, cut_factory):
    from lhotse import CutSet

    cuts = cut_factory([0.41, 0.25, 1.03, 0.057])
    compute_features(cuts, tmp_path / "fbank", "train_sup", progress_bar=False)
    return CutSet.from_file(tmp_path / "fbank" / "cuts_train_sup.jsonl.gz")


def test_cmvn_stats_against_numpy(tmp_path, fbank_cuts):
    stats = compute_cmvn(tmp_path / "fbank" / "cuts_train_sup.jsonl.gz", tmp_path / "cmvn.npz", progress_bar=False)
    allf = np.concatenate([c.load_features() for c in fbank_cuts]).astype(np.float64)
    assert stats.count == len(allf) == sum(num_frames(d) for d in [0.41, 0.25, 1.03, 0.057])
    np.testing.assert_allclose(stats.mean, np.mean(allf, axis=0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats.std, np.maximum(np.std(allf, axis=0), stats.std_floor), rtol=1e-8)
    with np.load(tmp_path / "cmvn.npz") as z:
        assert {"count", "sum", "sumsq", "mean", "std"} <= set(z.files)
        assert z["sum"].dtype == np.float64 and z["sumsq"].dtype == np.float64
        np.testing.assert_allclose(z["sum"], allf.sum(0))
        np.testing.assert_allclose(z["sumsq"], (allf**2).sum(0))
        np.testing.assert_allclose(z["mean"], np.mean(allf, axis=0))
    loaded = load_cmvn(tmp_path / "cmvn.npz")
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.std, stats.std)
    assert (tmp_path / ".cmvn.npz.done").exists()


def test_std_floor():
    s = CmvnStats.zeros(3, std_floor=0.5)
    s.accumulate(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 5.0]]))
    np.testing.assert_allclose(s.std, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(s.mean, [1.0, 2.0, 4.0])


def test_normalise_then_stack_equals_stack_then_normalise():
    rng = np.random.default_rng(0)
    stats = CmvnStats.zeros(64)
    for n in (5, 17, 3):
        stats.accumulate(3 + 2 * rng.standard_normal((n, 64)))
    tiled = tile_cmvn(stats)
    assert tiled.dim == 192
    np.testing.assert_allclose(tiled.mean, np.tile(stats.mean, 3))
    np.testing.assert_allclose(tiled.std, np.tile(stats.std, 3))
    for n in (1, 2, 3, 7, 10):
        x = (3 + 2 * rng.standard_normal((n, 64))).astype(np.float32)
        a = stack_frames(apply_cmvn(x, stats))
        b = apply_cmvn(stack_frames(x), tiled)
        assert a.shape == (num_stacked_frames(n), 192)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        # torch in, torch out, same numbers
        at = stack_frames(apply_cmvn(torch.from_numpy(x), stats))
        np.testing.assert_allclose(at.numpy(), a, rtol=1e-6, atol=1e-6)


def test_feature_reader_and_loader(tmp_path, fbank_cuts):
    stats = compute_cmvn(fbank_cuts, tmp_path / "cmvn.npz", progress_bar=False)
    reader = FeatureReader(tmp_path / "cmvn.npz")
    assert reader.dim == 192
    for cut in fbank_cuts:
        x = reader(cut)
        n = num_frames(cut.duration)
        assert x.shape == (num_stacked_frames(n), 192) and x.dtype == np.float32
        want = stack_frames((cut.load_features() - stats.mean) / stats.std)
        np.testing.assert_allclose(x, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(load_stacked_features(cut, stats), x, rtol=1e-6, atol=1e-6)
    # over the whole set the normalised 10 ms frames have mean 0 and std 1
    allf = np.concatenate([FeatureReader(stats, stack=False)(c) for c in fbank_cuts]).astype(np.float64)
    np.testing.assert_allclose(allf.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(allf.std(0)[stats.std > stats.std_floor], 1, atol=1e-4)


def test_cli_compute_cmvn(tmp_path, fbank_cuts):
    from asrkit.bin import compute_cmvn as cli

    args = ["--cuts", str(tmp_path / "fbank" / "cuts_train_sup.jsonl.gz"), "--out", str(tmp_path / "c.npz"),
            "--no-progress"]
    assert cli.main(args) == 0 and (tmp_path / "c.npz").exists()
    assert cli.main(args) == 0  # done: skipped
    assert cli.main(["--cuts", str(tmp_path / "nope.jsonl.gz"), "--out", str(tmp_path / "d.npz")]) == 1


def test_cmvn_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_cmvn(tmp_path / "missing.npz")
    with pytest.raises(ValueError):
        apply_cmvn(np.zeros((2, 50), np.float32), CmvnStats.zeros(64))


def _with_speakers(cuts, speakers):
    """The cuts with one supervision each, of the given speaker (None: no supervision)."""
    from lhotse import SupervisionSegment

    out = []
    for cut, spk in zip(cuts, speakers):
        cut.supervisions = [] if spk is None else [
            SupervisionSegment(id=cut.id, recording_id=cut.recording_id, start=0.0, duration=cut.duration,
                               speaker=spk, text="A")]
        out.append(cut)
    return out


def test_reader_per_utterance_and_per_speaker(tmp_path, fbank_cuts):
    """``utterance``: each cut's own statistics; ``speaker``: its speaker's over the set read (a cut
    without a supervision is its own speaker); both in the global mode's float32 arithmetic."""
    from asrkit.features.cmvn import accumulate_speaker_cmvn, speaker_of

    stats = compute_cmvn(fbank_cuts, tmp_path / "cmvn.npz", progress_bar=False)
    cuts = _with_speakers(list(fbank_cuts), ["A", "B", "A", None])
    raw = {c.id: c.load_features().astype(np.float64) for c in cuts}
    utt = FeatureReader(stats).with_norm("utterance")
    assert utt.norm == "utterance" and FeatureReader(stats).with_norm("global").norm == "global"
    for c in cuts:
        x = utt(c)
        f = raw[c.id]
        want = stack_frames(((f - f.mean(0)) / np.maximum(f.std(0), stats.std_floor)).astype(np.float32))
        np.testing.assert_allclose(x, want, rtol=1e-4, atol=1e-4)
    # speaker statistics: A pools cuts 0 and 2, B is cut 1, the cut without supervision is its own
    assert [speaker_of(c) for c in cuts] == ["A", "B", "A", cuts[3].id]
    spk = FeatureReader(stats).with_norm("speaker", cuts)
    assert sorted(spk.speaker_stats) == sorted(["A", "B", cuts[3].id])
    pooled = np.concatenate([raw[cuts[0].id], raw[cuts[2].id]])
    assert spk.speaker_stats["A"].count == len(pooled)
    for c, ref in ((cuts[0], pooled), (cuts[2], pooled), (cuts[1], raw[cuts[1].id])):
        want = stack_frames(((raw[c.id] - ref.mean(0)) / np.maximum(ref.std(0), stats.std_floor)).astype(np.float32))
        np.testing.assert_allclose(spk(c), want, rtol=1e-4, atol=1e-4)
    # a speaker-less cut normalised per speaker equals its per-utterance normalisation
    np.testing.assert_allclose(spk(cuts[3]), utt(cuts[3]), rtol=1e-6, atol=1e-6)
    # the statistics come from the cuts given: a cut of another speaker is refused, naming it
    other = _with_speakers([list(fbank_cuts)[1]], ["Z"])[0]
    with pytest.raises(ValueError, match=rf"cut {other.id}: speaker 'Z' has no statistics"):
        spk(other)
    assert accumulate_speaker_cmvn(cuts[:1])["A"].count == len(raw[cuts[0].id])


def test_reader_norm_is_checked(tmp_path):
    with pytest.raises(ValueError, match="cmvn_mode must be one of global, speaker, utterance, not 'spk'"):
        FeatureReader(None, norm="spk")
    with pytest.raises(ValueError, match="needs the speakers' statistics"):
        FeatureReader(None, norm="speaker")
