"""python -m asrkit.bin.transcribe: one line per file, skips named and counted, exit status, CTM."""
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from asrkit.bin.transcribe import main
from asrkit.infer.model_dir import load_model_dir
from asrkit.infer.recognizer import Recognizer


def _audio(path, seconds=1.0, rate=16000, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    env = np.repeat(rng.uniform(0.01, 1.0, n // 3200 + 1), 3200)[:n]
    x = (rng.standard_normal((n, channels)) * env[:, None] * 0.1).astype(np.float32)
    sf.write(path, x, rate)
    return path


def _lines(text):
    return [line for line in text.splitlines() if line.strip()]


def test_batch_with_bad_inputs(toy_models, tmp_path, capsys):
    good = [_audio(tmp_path / "a.wav", seed=1), _audio(tmp_path / "b.flac", 1.3, seed=2)]
    stereo = _audio(tmp_path / "st.wav", 1.0, rate=8000, channels=2, seed=3)
    (tmp_path / "notaudio.wav").write_text("hello\n")
    _audio(tmp_path / "full.wav")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:len(data) // 2])
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    _audio(tmp_path / "short.wav", 0.02)
    files = [str(p) for p in good + [stereo]] + [str(tmp_path / n) for n in
                                                  ("notaudio.wav", "cut.wav", "empty.wav", "short.wav", "none.wav")]
    rc = main(["--model", str(toy_models["student"]), "--ctm", str(tmp_path / "out.ctm"), *files])
    assert rc == 0
    cap = capsys.readouterr()  # the log goes to stderr (setup_logging replaces pytest's log capture)
    out = _lines(cap.out)
    assert [line.split()[0] for line in out] == ["a", "b", "st"]
    rec = Recognizer(load_model_dir(toy_models["student"]))
    assert out[0].split()[1:] == rec.recognize(sf.read(good[0], dtype="float32")[0], "a").words
    log = cap.err
    assert "skipped 5" in log and "real-time factor" in log
    for name, reason in (("notaudio", "unreadable_audio"), ("cut", "truncated"), ("empty", "empty_audio"),
                         ("short", "too_short"), ("none", "missing_audio")):
        assert f"{name}.wav" in log and reason in log, name
    assert "2 channels averaged" in log and "resampled from 8000 Hz" in log
    ctm = _lines((tmp_path / "out.ctm").read_text())
    words = [w for line in out for w in line.split()[1:]]
    assert [c.split()[4] for c in ctm] == words
    for c in ctm:
        _, ch, start, dur, _ = c.split()
        assert ch == "1" and float(start) >= 0 and float(dur) > 0


def test_nothing_transcribed_is_an_error(toy_models, tmp_path, capsys):
    (tmp_path / "x.wav").write_text("no")
    assert main(["--model", str(toy_models["student"]), str(tmp_path / "x.wav")]) == 1
    assert capsys.readouterr().out == ""


def test_wav_scp_and_list(toy_models, tmp_path, capsys):
    a = _audio(tmp_path / "a.wav", seed=1)
    (tmp_path / "wav.scp").write_text(f"utt1 {a}\nutt2 cat {a} |\n")
    (tmp_path / "list").write_text(f"{a}\n")
    assert main(["--model", str(toy_models["student"]), "--wav-scp", str(tmp_path / "wav.scp"),
                 "--list", str(tmp_path / "list")]) == 0
    out = _lines(capsys.readouterr().out)
    assert [line.split()[0] for line in out] == ["a", "utt1", "utt2"]
    assert len({tuple(line.split()[1:]) for line in out}) == 1


def test_streaming_prints_partials_and_the_offline_final(toy_models, tmp_path, capsys):
    a = _audio(tmp_path / "a.wav", 3.0, seed=4)
    assert main(["--model", str(toy_models["student"]), str(a)]) == 0
    offline = capsys.readouterr().out
    assert main(["--model", str(toy_models["student"]), "--streaming", "--chunk", "8", str(a)]) == 0
    cap = capsys.readouterr()
    assert cap.out == offline
    assert "[partial" in cap.err
    assert "streaming latency per 240 ms chunk" in cap.err


def test_teacher_refuses_streaming(toy_models, tmp_path):
    a = _audio(tmp_path / "a.wav")
    assert main(["--model", str(toy_models["teacher"]), "--streaming", str(a)]) == 1


def test_fresh_process_from_another_directory(toy_models, tmp_path):
    """The model directory alone is enough: copied elsewhere, read from an unrelated working directory."""
    import shutil

    model = tmp_path / "elsewhere" / "model"
    shutil.copytree(toy_models["student"], model)
    a = _audio(tmp_path / "a.wav", seed=5)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "asrkit.bin.transcribe", "--model", str(model), str(a)],
                          cwd=work, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = Recognizer(load_model_dir(toy_models["student"]))
    want = rec.recognize(sf.read(a, dtype="float32")[0]).words
    assert proc.stdout.split() == ["a", *want]


def test_a_failing_file_is_counted_not_fatal(toy_models, tmp_path, monkeypatch, capsys):
    from asrkit.infer import recognizer

    a, b = _audio(tmp_path / "a.wav", seed=1), _audio(tmp_path / "b.wav", 2.0, seed=2)
    real = recognizer.Recognizer.scores

    def flaky(self, feats):
        if len(feats) > 40:  # b: 2 s, 67 frames
            raise RuntimeError("out of memory (simulated)")
        return real(self, feats)

    monkeypatch.setattr(recognizer.Recognizer, "scores", flaky)
    assert main(["--model", str(toy_models["student"]), str(a), str(b)]) == 0
    cap = capsys.readouterr()
    assert [line.split()[0] for line in _lines(cap.out)] == ["a"]
    assert "skipped 1 (failed=1)" in cap.err and "out of memory (simulated)" in cap.err
