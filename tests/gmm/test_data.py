"""GMM features read as a stream equal the in-memory corpus's, bit for bit."""
import numpy as np
import pytest

from asrkit.gmm.data import FeatConfig, iter_features, load_corpus


@pytest.fixture
def mfcc_manifest(tmp_path):
    from lhotse import CutSet, MonoCut, NumpyFilesWriter, SupervisionSegment
    from lhotse.features import Features

    rng = np.random.default_rng(0)
    cuts = []
    with NumpyFilesWriter(tmp_path / "feats") as w:
        for i in range(9):
            n = int(rng.integers(20, 60))
            f = (rng.standard_normal((n, 13)) * 3 + i).astype(np.float32)
            key = w.write(f"u{i}", f)
            feats = Features(type="mfcc", num_frames=n, num_features=13, frame_shift=0.01, sampling_rate=16000,
                             start=0.0, duration=n / 100, storage_type=w.name, storage_path=str(tmp_path / "feats"),
                             storage_key=key)
            text = None if i == 4 else f"w{i} x"  # one cut without a transcript
            spk = None if i == 7 else f"s{i % 3}"  # one without a speaker: its own
            sup = SupervisionSegment(id=f"u{i}", recording_id=f"r{i}", start=0.0, duration=n / 100, text=text,
                                     speaker=spk)
            cuts.append(MonoCut(id=f"u{i}", start=0.0, duration=n / 100, channel=0, features=feats,
                                supervisions=[sup]))
    path = tmp_path / "cuts.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    return path


@pytest.mark.parametrize("cmn", ["speaker", "utt", "none"])
@pytest.mark.parametrize("need_text", [True, False])
def test_stream_equals_load_corpus(mfcc_manifest, cmn, need_text):
    cfg = FeatConfig(cmn=cmn)
    ref = load_corpus(mfcc_manifest, cfg, need_text=need_text).feats
    got = list(iter_features(mfcc_manifest, cfg, need_text=need_text))
    assert [u for u, _ in got] == list(ref) and ("u4" in ref) == (not need_text)
    for u, f in got:
        assert f.dtype == ref[u].dtype and np.array_equal(f, ref[u])
