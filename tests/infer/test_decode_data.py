"""decode_data on a hand-made Kaldi data dir with every kind of bad input: counted skips, the rest decoded."""
import json

import numpy as np
import soundfile as sf

from asrkit.infer.decode_data import decode_data
from asrkit.infer.model_dir import load_model_dir, recipe_model
from asrkit.infer.recognizer import Recognizer


def _audio(path, seconds, seed):
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    env = np.repeat(rng.uniform(0.01, 1.0, n // 3200 + 1), 3200)[:n]
    sf.write(path, (rng.standard_normal(n) * env * 0.1).astype(np.float32), 16000)
    return path


def _data_dir(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    good = {f"u{i}": _audio(audio / f"u{i}.wav", 0.8 + 0.3 * i, i) for i in range(3)}
    (audio / "text.wav").write_text("not audio\n")
    _audio(audio / "full.wav", 1.0, 9)
    (audio / "cut.wav").write_bytes((audio / "full.wav").read_bytes()[:9000])
    _audio(audio / "full.flac", 1.0, 9)
    flac = bytearray((audio / "full.flac").read_bytes())
    flac[8000:12000] = bytes(4000)  # frames zeroed mid-file: the header and the last sample read, decoding fails
    (audio / "cut.flac").write_bytes(bytes(flac))
    _audio(audio / "short.wav", 0.05, 9)
    wavs = {**{u: str(p) for u, p in good.items()}, "bad_text": str(audio / "text.wav"),
            "bad_trunc": str(audio / "cut.wav"), "bad_flac": str(audio / "cut.flac"),
            "bad_short": str(audio / "short.wav"), "bad_missing": str(audio / "none.wav"), "bad_pipe": "false |"}
    d = tmp_path / "data"
    d.mkdir()
    (d / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in sorted(wavs.items())))
    (d / "utt2spk").write_text("".join(f"{u} spk\n" for u in sorted(wavs)))
    (d / "text").write_text("".join(f"{u} yes no\n" for u in sorted(wavs)))
    return d, good


def test_bad_inputs_are_counted_and_the_rest_decoded(toy_models, tmp_path):
    d, good = _data_dir(tmp_path)
    model = load_model_dir(toy_models["student"])
    summary = decode_data(model, d, tmp_path / "decode")
    assert summary["decoded"] == 3 and summary["utterances"] == 9
    assert summary["skipped"] == {"missing_audio": 1, "too_short": 1, "truncated": 1, "unreadable_audio": 3}
    assert [s[0] for s in summary["skipped_at_decoding"]] == ["bad_flac"]  # passes the header probe only
    report = (tmp_path / "decode" / "validation.txt").read_text()
    for u in ("bad_text", "bad_trunc", "bad_short", "bad_missing", "bad_pipe"):
        assert u in report, u
    hyps = dict(line.split(" ", 1) for line in (tmp_path / "decode" / "hyp.txt").read_text().splitlines())
    assert sorted(hyps) == sorted(good)
    # the words a transcription of the same files gives, with the features stored as the recipes store them
    rec = Recognizer(model)
    for u, p in good.items():
        x = sf.read(p, dtype="float32")[0]
        assert hyps[u].split() == rec.decode_scores(rec.scores(rec.features(x, stored=True))).words, u
    wer = (tmp_path / "decode" / "best_wer").read_text()
    assert wer.startswith("%WER") and "wer_3" in wer
    assert "%CI95" in (tmp_path / "decode" / "wer_3").read_text()
    assert json.loads((tmp_path / "decode" / "summary.json").read_text())["lm_weight"] == 3.0


def test_recipe_system_in_place_equals_its_export(toy_models, toy_recipe, tmp_path):
    d, _ = _data_dir(tmp_path)
    a = decode_data(recipe_model(toy_recipe / "exp", "student"), d, tmp_path / "a")
    b = decode_data(load_model_dir(toy_models["student"]), d, tmp_path / "b", lm_weight=3.0)
    assert (tmp_path / "a" / "hyp.txt").read_text() == (tmp_path / "b" / "hyp.txt").read_text()
    assert a["wer"] == b["wer"]


def test_cuts_manifest_input(toy_models, tmp_path):
    from asrkit.data.manifests import load_kaldi_data_dir

    d, good = _data_dir(tmp_path)
    for name in ("wav.scp", "utt2spk", "text"):  # keep the good utterances only
        lines = (d / name).read_text().splitlines()
        (d / name).write_text("".join(line + "\n" for line in lines if line.split()[0] in good))
    load_kaldi_data_dir(d, progress=False).cuts.to_file(tmp_path / "cuts.jsonl.gz")
    model = load_model_dir(toy_models["student"])
    s1 = decode_data(model, tmp_path / "cuts.jsonl.gz", tmp_path / "m")
    s2 = decode_data(model, d, tmp_path / "k")
    assert s1["decoded"] == 3 and (tmp_path / "m" / "hyp.txt").read_text() == (tmp_path / "k" / "hyp.txt").read_text()


def test_a_new_preparation_drops_the_old_jobs(toy_models, tmp_path):
    from asrkit.infer.decode_data import decode_job, merge, prepare

    d, good = _data_dir(tmp_path)
    model = load_model_dir(toy_models["student"])
    decode_data(model, d, tmp_path / "out")
    lines = (d / "wav.scp").read_text().splitlines()
    (d / "wav.scp").write_text("".join(line + "\n" for line in lines if line.startswith("u0 ")))
    prepare(d, tmp_path / "out")
    assert not list((tmp_path / "out").glob("split*"))
    decode_job(model, tmp_path / "out")
    assert merge(tmp_path / "out")["decoded"] == 1
