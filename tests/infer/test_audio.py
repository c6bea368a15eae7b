"""Reading audio for transcription: conversions with notes, each bad input a named AudioSkip."""
import numpy as np
import pytest
import soundfile as sf

from asrkit.infer.audio import AudioSkip, load_audio


def _write(path, n=16000, rate=16000, channels=1, fmt=None):
    x = (np.random.default_rng(0).standard_normal((n, channels)) * 0.1).astype(np.float32)
    sf.write(path, x, rate, format=fmt)
    return x


def test_mono_16k_read_as_is(tmp_path):
    x = _write(tmp_path / "a.wav", fmt="WAV")
    a = load_audio(str(tmp_path / "a.wav"))
    assert a.notes == [] and len(a.samples) == 16000
    np.testing.assert_allclose(a.samples, x[:, 0], atol=1 / 32768)


def test_stereo_8k_is_downmixed_and_resampled_with_notes(tmp_path):
    x = _write(tmp_path / "s.flac", n=8000, rate=8000, channels=2)
    a = load_audio(str(tmp_path / "s.flac"))
    assert len(a.samples) == 16000 and a.samples.dtype == np.float32
    assert any("2 channels" in n for n in a.notes) and any("8000 Hz" in n for n in a.notes)
    assert a.original_rate == 8000 and a.channels == 2


def test_pipe_source(tmp_path):
    _write(tmp_path / "a.wav")
    a = load_audio(f"cat {tmp_path / 'a.wav'} |")
    assert len(a.samples) == 16000


@pytest.mark.parametrize("case,reason", [
    ("missing", "missing_audio"), ("text", "unreadable_audio"), ("truncated_wav", "truncated"),
    ("truncated_flac", "truncated"), ("empty", "empty_audio"), ("short", "too_short"),
    ("failing_pipe", "unreadable_audio"), ("silent_pipe", "empty_audio"),
])
def test_bad_inputs_are_named_skips(tmp_path, case, reason):
    p = tmp_path / f"{case}.wav"
    if case == "text":
        p.write_text("not audio at all\n")
    elif case == "truncated_wav":
        _write(tmp_path / "full.wav", fmt="WAV")
        data = (tmp_path / "full.wav").read_bytes()
        p.write_bytes(data[:len(data) // 2])
    elif case == "truncated_flac":
        p = tmp_path / "t.flac"
        _write(tmp_path / "full.flac")
        data = (tmp_path / "full.flac").read_bytes()
        p.write_bytes(data[:len(data) // 2])
    elif case == "empty":
        sf.write(p, np.zeros((0, 1), np.float32), 16000)
    elif case == "short":
        _write(p, n=400)  # 25 ms: under one 30 ms frame
    source = str(p)
    if case == "failing_pipe":
        source = "false |"
    elif case == "silent_pipe":
        source = "true |"
    with pytest.raises(AudioSkip) as e:
        load_audio(source)
    assert e.value.reason == reason
    assert source in str(e.value)
