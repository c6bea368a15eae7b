import gzip
from pathlib import Path

import numpy as np
import pytest

from asrkit.features import compute_features, extract_features, make_extractor, num_frames
from asrkit.features.extract import manifest_path, storage_dir
from asrkit.utils.atomic import done_marker

# durations incl. edge cases: under a window, exactly half a frame, odd sample counts, > a second
DURATIONS = [0.005, 0.0088, 0.015, 0.0249, 0.025, 0.03, 0.1003, 1.0, 1.0049, 1.005, 2.3456]


@pytest.mark.parametrize("num_samples", [80, 100, 130, 200, 239, 240, 300, 399, 400, 401, 1000, 16080, 37530])
@pytest.mark.parametrize("kind,dim", [("fbank", 64), ("mfcc", 13)])
def test_extract_features_frame_rule(num_samples, kind, dim):
    ext = make_extractor(kind)
    x = np.random.default_rng(num_samples).standard_normal(num_samples).astype(np.float32) * 0.1
    f = extract_features(x, ext)
    assert f.shape == (num_frames(num_samples / 16000), dim)
    assert f.dtype == np.float32 and np.isfinite(f).all()


def test_extract_zero_frames():
    assert extract_features(np.zeros(79, np.float32), make_extractor("fbank")).shape == (0, 64)


def test_short_signal_path_equals_kaldi_reflection():
    """The padded path for signals under a window gives what Kaldi's repeated reflection gives."""
    ext = make_extractor("fbank")
    rng = np.random.default_rng(3)
    # above the threshold both paths apply: compare the padded path with lhotse's own framing
    x = (0.1 * rng.standard_normal(1000)).astype(np.float32)
    y = np.pad(x, (160, 560), mode="symmetric")
    via_pad = ext.extract(y, 16000)[1 : num_frames(1000 / 16000) + 1]
    np.testing.assert_allclose(via_pad, ext.extract(x, 16000), atol=1e-4)
    # under the threshold: against kaldi-native-fbank, which reflects like Kaldi
    knf = pytest.importorskip("kaldi_native_fbank")
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0
    opts.frame_opts.snip_edges = False
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = 64
    opts.mel_opts.low_freq = 20
    opts.mel_opts.high_freq = -400
    for n in (130, 300):
        s = (0.1 * rng.standard_normal(n)).astype(np.float32)
        fb = knf.OnlineFbank(opts)
        fb.accept_waveform(16000, s.tolist())
        fb.input_finished()
        ref = np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])
        ours = extract_features(s, ext)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_compute_features_shapes_storage_and_manifest(tmp_path, cut_factory):
    from lhotse import CutSet

    cuts = cut_factory(DURATIONS + [0.004])  # the last one has no frame: skipped and counted
    summary = compute_features(cuts, tmp_path / "fbank", "dev", kind="fbank", num_jobs=1, progress_bar=False)
    assert summary.cuts == len(DURATIONS) and summary.skipped == 1
    assert summary.frames == sum(num_frames(d) for d in DURATIONS)
    manifest = manifest_path(tmp_path / "fbank", "dev")
    assert manifest == tmp_path / "fbank" / "cuts_dev.jsonl.gz" and done_marker(manifest).exists()
    out = CutSet.from_file(manifest)
    ext = make_extractor("fbank")
    for cut, d in zip(out, DURATIONS):
        n = num_frames(d)
        feats = cut.load_features()
        assert feats.shape == (n, 64) and cut.num_frames == n and cut.features.num_frames == n
        assert cut.features.storage_type == "lilcom_chunky"
        assert Path(cut.features.storage_path).parent == storage_dir(tmp_path / "fbank", "dev")
        raw = extract_features(cut.load_audio()[0], ext)
        # lilcom is lossy: log-domain values to about 2^-5 relative precision
        np.testing.assert_allclose(feats, raw, atol=0.02 + 0.02 * np.abs(raw).max())
    assert not [p for p in (tmp_path / "fbank").iterdir() if ".tmp" in p.name]


def test_compute_features_parallel_equals_serial_and_keeps_order(tmp_path, cut_factory):
    from lhotse import CutSet

    cuts = cut_factory([0.3, 0.71, 0.05, 1.2, 0.42, 0.9], seed=1)
    compute_features(cuts, tmp_path / "a", "x", num_jobs=1, chunk_size=2, progress_bar=False)
    compute_features(cuts, tmp_path / "b", "x", num_jobs=2, chunk_size=2, progress_bar=False,
                     min_parallel_seconds=0)
    a, b = CutSet.from_file(tmp_path / "a" / "cuts_x.jsonl.gz"), CutSet.from_file(tmp_path / "b" / "cuts_x.jsonl.gz")
    assert [c.id for c in a] == [c.id for c in cuts] == [c.id for c in b]
    assert len(list((tmp_path / "b" / "storage_x").glob("feats-*.lca"))) == 3
    for ca, cb in zip(a, b):
        np.testing.assert_allclose(ca.load_features(), cb.load_features(), atol=1e-5)


def test_compute_features_mfcc(tmp_path, cut_factory):
    from asrkit.features import load_mfcc_with_deltas
    from lhotse import CutSet

    cuts = cut_factory([0.5, 0.037])
    compute_features(cuts, tmp_path / "mfcc", "dev", kind="mfcc", progress_bar=False)
    out = CutSet.from_file(tmp_path / "mfcc" / "cuts_dev.jsonl.gz")
    for cut, d in zip(out, [0.5, 0.037]):
        assert cut.load_features().shape == (num_frames(d), 13)
        assert load_mfcc_with_deltas(cut).shape == (num_frames(d), 39)


def test_resume_skips_done_and_redoes_killed(tmp_path, cut_factory, monkeypatch):
    import asrkit.features.extract as extract

    cuts = cut_factory([0.2, 0.3])
    out = tmp_path / "fbank"
    compute_features(cuts, out, "dev", progress_bar=False)
    manifest = manifest_path(out, "dev")
    stamp = manifest.stat().st_mtime_ns

    # done: skipped, nothing recomputed
    def boom(*a, **k):
        raise AssertionError("should not recompute a done set")

    monkeypatch.setattr(extract, "_process_chunk", boom)
    s = compute_features(cuts, out, "dev", progress_bar=False)
    assert s.resumed and manifest.stat().st_mtime_ns == stamp

    # a killed run: no marker -> redone; a failure mid-way leaves no half-written output
    done_marker(manifest).unlink()
    with pytest.raises(AssertionError):
        compute_features(cuts, out, "dev", progress_bar=False)
    assert not done_marker(manifest).exists()
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.undo()
    s = compute_features(cuts, out, "dev", progress_bar=False)
    assert not s.resumed and s.cuts == 2 and done_marker(manifest).exists()


def test_cli_compute_features(tmp_path, cut_factory, monkeypatch):
    from asrkit.bin import compute_features as cli

    cuts = cut_factory([0.2, 0.31])
    cuts.to_file(tmp_path / "cuts_dev.jsonl.gz")
    monkeypatch.chdir(tmp_path)
    args = ["--cuts", "cuts_dev.jsonl.gz", "--out-dir", "data/fbank", "--set", "dev", "--kind", "fbank",
            "--num-jobs", "1", "--no-progress"]
    assert cli.main(args) == 0
    assert (tmp_path / "data/fbank/cuts_dev.jsonl.gz").exists()
    assert (tmp_path / "data/fbank/.cuts_dev.jsonl.gz.done").exists()
    assert cli.main(args) == 0  # skipped
    assert cli.main(["--cuts", "missing.jsonl.gz", "--out-dir", "x", "--set", "a", "--no-progress"]) == 1


def test_cli_several_sets_in_one_process_as_one_set_each(tmp_path, cut_factory, monkeypatch, capsys):
    """--cuts A B --set a b: each set's features, manifest and stamp exactly as two one-set runs make them
    (so a recipe rerun with one set a call is not stale); a count mismatch is refused."""
    from asrkit.bin import compute_features as cli

    cut_factory([0.2, 0.31]).to_file(tmp_path / "cuts_dev.jsonl.gz")
    cut_factory([0.25]).to_file(tmp_path / "cuts_test.jsonl.gz")
    monkeypatch.chdir(tmp_path)
    common = ["--out-dir", "{}", "--kind", "fbank", "--num-jobs", "1", "--no-progress"]
    both = [a.format("both") for a in common]
    assert cli.main(["--cuts", "cuts_dev.jsonl.gz", "cuts_test.jsonl.gz", "--set", "dev", "test", *both]) == 0
    for name in ("dev", "test"):
        assert cli.main(["--cuts", f"cuts_{name}.jsonl.gz", "--set", name, *[a.format("one") for a in common]]) == 0
        for f in (f"cuts_{name}.jsonl.gz", f".cuts_{name}.jsonl.gz.done"):
            a, b = ((tmp_path / d / f).read_bytes() for d in ("both", "one"))
            if f.endswith(".gz"):
                a, b = gzip.decompress(a), gzip.decompress(b)
            assert a.replace(b"both/", b"one/") == b, f  # the same but for the folder's name
        assert sorted(p.name for p in (tmp_path / "both" / f"storage_{name}").iterdir()) == \
            sorted(p.name for p in (tmp_path / "one" / f"storage_{name}").iterdir())
    capsys.readouterr()
    assert cli.main(["--cuts", "cuts_test.jsonl.gz", "--set", "test", *both]) == 0  # done, not stale
    assert "skipped" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["--cuts", "cuts_dev.jsonl.gz", "--set", "dev", "test", *both])
    assert "1 --cuts for 2 --set" in capsys.readouterr().err


@pytest.mark.parametrize("bad_index", [0, 12])
def test_unreadable_audio_names_the_cut_and_leaves_nothing(tmp_path, cut_factory, bad_index):
    cuts = cut_factory([0.2] * 12 + [0.3], prefix="v")
    bad = list(cuts)[bad_index]
    Path(bad.recording.sources[0].source).write_bytes(b"not a flac")
    with pytest.raises(RuntimeError, match=bad.id):
        compute_features(cuts, tmp_path / "fbank", "dev", progress_bar=False)
    assert not (tmp_path / "fbank" / "cuts_dev.jsonl.gz").exists()
    assert not (tmp_path / "fbank" / "storage_dev").exists()
    assert not [p for p in (tmp_path / "fbank").iterdir() if ".tmp" in p.name]


def test_audio_at_another_rate_is_resampled(tmp_path):
    """--sample-rate 0 lets 8 kHz audio through stage 1; stage 2 resamples it to 16 kHz (lhotse through
    scipy, a dependency of the install) instead of failing on a missing module."""
    import soundfile as sf
    from lhotse import CutSet, Recording

    t = np.arange(8000) / 8000  # 1 s of a 440 Hz tone at 8 kHz
    sf.write(tmp_path / "a.flac", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000, subtype="PCM_16")
    cuts = CutSet.from_cuts([Recording.from_file(tmp_path / "a.flac", recording_id="a").to_cut()])
    s = compute_features(cuts, tmp_path / "fbank", "dev", kind="fbank", progress_bar=False)
    assert s.cuts == 1
    cut = CutSet.from_file(manifest_path(tmp_path / "fbank", "dev"))[0]
    feats = cut.load_features()
    assert feats.shape == (num_frames(1.0), 64)
    # the tone's energy is in the bins around 440 Hz, as at 16 kHz
    ref = extract_features((0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32),
                           make_extractor("fbank"))
    assert np.argmax(feats.mean(0)) == np.argmax(ref.mean(0))


def test_plan_streams_a_manifest_and_jobs_see_the_same_chunks(tmp_path, cut_factory):
    """plan_extraction of a manifest path reads it as a stream (no cut list): the same jobs, chunk
    size and chunks as of the CutSet; the set extracted chunk by chunk keeps the input order."""
    from lhotse import CutSet

    from asrkit.features.extract import plan_extraction

    cuts = cut_factory([0.2, 0.3, 0.25, 0.4, 0.15])
    path = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(path)
    for jobs, size in ((1, None), (2, 2), (2, None)):
        a = plan_extraction(path, jobs, size, min_parallel_seconds=0)
        b = plan_extraction(cuts, jobs, size, min_parallel_seconds=0)
        assert (a.num_jobs, a.chunk_size, a.num_cuts, a.seconds) == (b.num_jobs, b.chunk_size, 5, sum(c.duration for c in cuts))
        assert [[c.id for c in ch] for ch in a.chunks()] == [[c.id for c in ch] for ch in b.chunks()]
    s = compute_features(path, tmp_path / "f", "x", num_jobs=1, chunk_size=2, progress_bar=False)
    assert s.cuts == 5 and [c.id for c in CutSet.from_file(s.manifest)] == [c.id for c in cuts]
