"""The incremental frontend equals the offline features bit for bit, whatever the audio chunks."""
import numpy as np
import pytest

from asrkit.features.cmvn import CmvnStats
from asrkit.features.extract import extract_features, make_extractor
from asrkit.features.stack import num_frames_from_samples, stack_frames
from asrkit.infer.frontend import OnlineFbank, OnlineFeatures, offline_fbank, offline_features, stored_like


def _signal(n, seed=0):
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def _chunked(obj, x, size):
    outs = [obj.accept(x[i:i + size]) for i in range(0, len(x), size)]
    return np.concatenate(outs + [obj.finish()])


# lengths with n % 3 == 0, 1, 2, an end landing on a block boundary, and 30 ms (the shortest accepted)
@pytest.mark.parametrize("n", [480, 999, 1920 + 279, 1920 + 280, 16000 + 79, 16000 + 80, 32077])
def test_online_fbank_equals_offline_for_any_chunking(n):
    x = _signal(n, n)
    whole = offline_fbank(x)
    assert whole.shape == (num_frames_from_samples(n), 64)
    for size in (1, 37, 160, 481, 4000):
        if size == 1 and n > 3000:
            continue
        assert np.array_equal(_chunked(OnlineFbank(), x, size), whole), size


def test_online_fbank_matches_the_stored_extractor():
    """The recipes' extractor (one batch per utterance) agrees to float rounding."""
    x = _signal(16000 * 3 + 17, 3)
    ref = extract_features(x, make_extractor("fbank"))
    np.testing.assert_allclose(offline_fbank(x), ref, atol=1e-5, rtol=0)


def test_online_features_normalise_then_stack_like_the_reader():
    x = _signal(8000 + 123, 4)
    rng = np.random.default_rng(0)
    cmvn = CmvnStats(100.0, rng.standard_normal(64) * 100, np.full(64, 1e4))
    fb = offline_fbank(x)
    want = stack_frames((fb - cmvn.mean.astype(np.float32)) * (1.0 / cmvn.std).astype(np.float32))
    got = _chunked(OnlineFeatures(cmvn), x, 333)
    assert np.array_equal(got, want)
    assert np.array_equal(offline_features(x, cmvn), want)


def test_stored_like_is_lilcom_storage(tmp_path):
    from lhotse import LilcomChunkyWriter
    from lhotse.features.io import LilcomChunkyReader

    fb = offline_fbank(_signal(16000 * 6, 5))  # 600 frames: two lilcom chunks
    with LilcomChunkyWriter(tmp_path / "f.lca", tick_power=-5) as w:
        key = w.write("u", fb.copy())  # lilcom may write its reconstruction into its input
    stored = LilcomChunkyReader(tmp_path / "f.lca").read(key)
    assert np.array_equal(stored_like(fb.copy()), stored)
    assert not np.array_equal(stored, fb)


def test_too_short_for_a_window_is_refused():
    f = OnlineFbank()
    f.accept(_signal(300))
    with pytest.raises(ValueError, match="shorter than one"):
        f.finish()
