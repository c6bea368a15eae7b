"""Every validation case: a clear error naming the utterance and the file, or a counted skip."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.data.manifests import load_kaldi_data_dir
from asrkit.testing.corpus import write_toy_audio, write_toy_corpus
from asrkit.data.validate import DataValidationError, EmptySetError, read_report_counts

SPEAKERS = ["spk1", "spk2"]  # 2 utterances each: spk1-000 spk1-001 spk2-000 spk2-001


def toy(tmp_path: Path) -> Path:
    root = write_toy_corpus(tmp_path / "corpus", {"s": SPEAKERS}, unlabelled=(), durations=[0.5, 0.6])
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def missing_audio(root, d):
    (root / "audio/s/spk1/spk1-001.flac").unlink()
    return "spk1-001", "wav.scp"


def no_wav_entry(root, d):
    edit(d / "wav.scp", "spk1-001 audio/s/spk1/spk1-001.flac\n", "")
    return "spk1-001", "wav.scp"


def unreadable_audio(root, d):
    (root / "audio/s/spk1/spk1-001.flac").write_bytes(b"this is not audio" * 10)
    return "spk1-001", "wav.scp"


def empty_audio(root, d):
    write_toy_audio(root / "audio/s/spk1/spk1-001.wav", 0)
    edit(d / "wav.scp", "spk1-001.flac", "spk1-001.wav")
    return "spk1-001", "wav.scp"


def sample_rate_mismatch(root, d):
    write_toy_audio(root / "audio/s/spk1/spk1-001.flac", 4000, sample_rate=8000)
    return "spk1-001", "wav.scp"


def missing_transcript(root, d):
    lines = [x for x in (d / "text").read_text().splitlines() if not x.startswith("spk2-000")]
    (d / "text").write_text("\n".join(lines) + "\n")
    return "spk2-000", "text"


def empty_transcript(root, d):
    lines = [("spk2-000" if x.startswith("spk2-000") else x) for x in (d / "text").read_text().splitlines()]
    (d / "text").write_text("\n".join(lines) + "\n")
    return "spk2-000", "text"


def duplicate_id(root, d):
    with open(d / "text", "a") as f:
        f.write("spk2-001 ANOTHER TRANSCRIPT\n")
    return "spk2-001", "text"


def non_utf8(root, d):
    raw = (d / "text").read_bytes().split(b"\n")
    i = next(k for k, line in enumerate(raw) if line.startswith(b"spk2-001"))
    raw[i] = b"spk2-001 CAF\xe9 OLE"  # Latin-1, not UTF-8
    (d / "text").write_bytes(b"\n".join(raw))
    return "spk2-001", f"text:{i + 1}"


def too_short(root, d):
    write_toy_audio(root / "audio/s/spk1/spk1-000.flac", 800)  # 0.05 s
    return "spk1-000", "wav.scp"


def missing_utt2spk(root, d):
    edit(d / "utt2spk", "spk2-001 spk2\n", "")
    return "spk2-001", "utt2spk"


def truncated(root, d):
    """A WAV file cut short after writing: its header says 0.6 s, the data holds 0.3 s."""
    wav = root / "audio/s/spk1/spk1-001.wav"
    write_toy_audio(wav, 9600)
    with open(wav, "r+b") as f:
        f.truncate(44 + 4800 * 2)
    edit(d / "wav.scp", "spk1-001.flac", "spk1-001.wav")
    return "spk1-001", "wav.scp"


def multi_channel(root, d):
    sf.write(str(root / "audio/s/spk1/spk1-001.flac"), stereo(), 16000, subtype="PCM_16")
    return "spk1-001", "wav.scp"


def stereo() -> np.ndarray:
    """0.5 s: the left channel 1000, the right -3000 (their mean -1000)."""
    return np.stack([np.full(8000, 1000, np.int16), np.full(8000, -3000, np.int16)], axis=1)


CASES = {
    "truncated": truncated,
    "multi_channel": multi_channel,
    "missing_audio": missing_audio,
    "unreadable_audio": unreadable_audio,
    "empty_audio": empty_audio,
    "sample_rate_mismatch": sample_rate_mismatch,
    "missing_transcript": missing_transcript,
    "empty_transcript": empty_transcript,
    "duplicate_id": duplicate_id,
    "non_utf8": non_utf8,
    "too_short": too_short,
    "missing_utt2spk": missing_utt2spk,
}


@pytest.mark.parametrize("reason", sorted(CASES) + ["no_wav_entry"])
def test_fail_mode_names_utterance_and_file(tmp_path, reason):
    root = toy(tmp_path)
    d = root / "data" / "s"
    utt, file = (CASES.get(reason) or no_wav_entry)(root, d)
    with pytest.raises(DataValidationError) as e:
        load_kaldi_data_dir(d, root, min_duration=0.1)
    msg = str(e.value)
    assert utt in msg
    assert f"{d}/{file}" in msg
    assert (reason if reason != "no_wav_entry" else "missing_audio") in msg
    assert {i.utt_id for i in e.value.issues} == {utt}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_skip_mode_counts(tmp_path, reason):
    root = toy(tmp_path)
    d = root / "data" / "s"
    utt, _ = CASES[reason](root, d)
    report = tmp_path / "report.txt"
    p = load_kaldi_data_dir(d, root, min_duration=0.1, on_error="skip", report_path=report)
    assert utt not in {c.id for c in p.cuts}
    assert len(p.cuts) == 3
    assert read_report_counts(report) == {reason: 1}
    assert f"{utt}\t{reason}\t" in report.read_text()


def test_non_utf8_names_the_line(tmp_path):
    root = toy(tmp_path)
    d = root / "data" / "s"
    _, file = non_utf8(root, d)
    with pytest.raises(DataValidationError, match=rf"{file}: utterance 'spk2-001'.*non_utf8"):
        load_kaldi_data_dir(d, root)


def test_all_cases_at_once_skip_report_and_summary(tmp_path, caplog):
    root = write_toy_corpus(tmp_path / "corpus", {"s": [f"spk{i}" for i in range(6)]}, unlabelled=(),
                           utts_per_speaker=3, durations=[0.5, 0.6, 0.7])
    d = root / "data" / "s"
    missing_audio(root, d)  # spk1-001
    missing_transcript(root, d)  # spk2-000
    non_utf8(root, d)  # spk2-001
    too_short(root, d)  # spk1-000
    sample_rate_mismatch_other = root / "audio/s/spk3/spk3-002.flac"
    write_toy_audio(sample_rate_mismatch_other, 8000, sample_rate=22050)
    edit(d / "utt2spk", "spk4-000 spk4\n", "")
    report = tmp_path / "validation_s.txt"
    with caplog.at_level(logging.INFO):
        p = load_kaldi_data_dir(d, root, set_name="s", on_error="skip", report_path=report)
    assert len(p.cuts) == 18 - 6
    counts = read_report_counts(report)
    assert counts == {"missing_audio": 1, "missing_transcript": 1, "non_utf8": 1, "too_short": 1,
                      "sample_rate_mismatch": 1, "missing_utt2spk": 1}
    assert p.report.num_skipped == 6 and p.report.num_total == 18
    summary = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(summary) == 1 and "\n" not in summary[0] and "6 skipped" in summary[0]


def test_fail_mode_lists_every_problem(tmp_path):
    root = toy(tmp_path)
    d = root / "data" / "s"
    missing_audio(root, d)
    missing_transcript(root, d)
    with pytest.raises(DataValidationError) as e:
        load_kaldi_data_dir(d, root)
    assert {i.utt_id for i in e.value.issues} == {"spk1-001", "spk2-000"}


def test_unlabelled_set_needs_no_text(tmp_path):
    root = write_toy_corpus(tmp_path / "corpus", {"train_unsup": SPEAKERS})
    d = root / "data" / "train_unsup"
    assert not (d / "text").exists()
    with pytest.raises(DataValidationError, match="missing_transcript"):
        load_kaldi_data_dir(d, root)
    p = load_kaldi_data_dir(d, root, labelled=False, oracle_text=root / "oracle/train_unsup/text")
    assert len(p.cuts) == 4
    assert all(c.supervisions[0].text is None for c in p.cuts)
    assert all(c.supervisions[0].text for c in p.oracle_cuts)


def test_unlabelled_set_drops_its_text(tmp_path):
    root = toy(tmp_path)
    p = load_kaldi_data_dir(root / "data" / "s", root, labelled=False)
    assert all(s.text is None for s in p.supervisions)
    assert all(c.supervisions[0].text for c in p.oracle_cuts)  # the text file is the oracle


def test_bad_segment(tmp_path):
    root = write_toy_corpus(tmp_path / "corpus", {"s": SPEAKERS}, unlabelled=(), segments=True,
                           durations=[0.5, 0.6])
    d = root / "data" / "s"
    edit(d / "segments", "spk2-001 spk2-rec 0.50 1.10", "spk2-001 spk2-rec 0.50 3.10")
    with pytest.raises(DataValidationError, match=r"segments:\d+: utterance 'spk2-001'.*bad_segment"):
        load_kaldi_data_dir(d, root)
    p = load_kaldi_data_dir(d, root, on_error="skip")
    assert p.report.counts() == {"bad_segment": 1}


def test_expected_rate_can_be_changed(tmp_path):
    root = write_toy_corpus(tmp_path / "corpus", {"s": SPEAKERS}, unlabelled=(), sample_rate=8000)
    d = root / "data" / "s"
    with pytest.raises(DataValidationError, match="8000 Hz, expected 16000 Hz"):
        load_kaldi_data_dir(d, root)
    assert load_kaldi_data_dir(d, root, sample_rate=8000).cuts[0].sampling_rate == 8000


def test_truncated_message_gives_header_and_data_lengths(tmp_path):
    root = toy(tmp_path)
    d = root / "data" / "s"
    truncated(root, d)
    with pytest.raises(DataValidationError, match=r"spk1-001.wav: the header says 0.600 s, the file holds 0.300 s"):
        load_kaldi_data_dir(d, root)


def test_truncated_flac_detected(tmp_path):
    root = toy(tmp_path)
    d = root / "data" / "s"
    flac = root / "audio/s/spk1/spk1-001.flac"
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(DataValidationError, match=r"spk1-001.*truncated.*header says 0.600 s, but its last sample"):
        load_kaldi_data_dir(d, root)


@pytest.mark.parametrize("how,expected", [({"channel": 0}, 1000), ({"channel": 1}, -3000), ({"downmix": True}, -1000)])
def test_stereo_channel_or_downmix_by_explicit_option(tmp_path, how, expected):
    root = toy(tmp_path)
    d = root / "data" / "s"
    multi_channel(root, d)
    p = load_kaldi_data_dir(d, root, **how)
    cut = next(c for c in p.cuts if c.id == "spk1-001")
    audio = cut.load_audio()
    assert audio.shape == (1, 8000)
    assert np.allclose(audio * 32768, expected, atol=1)
    assert any("multi-channel" in n for n in p.report.notes)
    # the Kaldi view gets the same selection, as a sox pipe
    assert cut.recording.sources[0].type == "command" and "remix" in cut.recording.sources[0].source


def test_a_channel_the_audio_lacks_is_named(tmp_path):
    root = toy(tmp_path)
    d = root / "data" / "s"
    multi_channel(root, d)
    with pytest.raises(DataValidationError, match=r"2 channels, no channel 2"):
        load_kaldi_data_dir(d, root, channel=2)
    with pytest.raises(ValueError, match="not both"):
        load_kaldi_data_dir(d, root, channel=0, downmix=True)


def test_no_valid_utterance_is_an_error_even_under_skip(tmp_path):
    root = toy(tmp_path)
    d = root / "data" / "s"
    for spk in SPEAKERS:
        for i in range(2):
            (root / f"audio/s/{spk}/{spk}-00{i}.flac").unlink()
    report = tmp_path / "report.txt"
    with pytest.raises(EmptySetError, match=rf"no valid utterance \(4 in {d}, all skipped: missing_audio=4\); "
                                            rf"see {report}"):
        load_kaldi_data_dir(d, root, on_error="skip", report_path=report)
    assert read_report_counts(report) == {"missing_audio": 4}
