"""Kaldi data dir -> lhotse manifests -> Kaldi data dir is lossless."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lhotse import CutSet, RecordingSet, SupervisionSet

from asrkit.data.kaldi_dir import format_time, read_kaldi_dir
from asrkit.data.manifests import export_kaldi_dir, load_kaldi_data_dir, manifests_to_kaldi_dir
from asrkit.testing.corpus import write_toy_audio, write_toy_corpus

FILES = ("wav.scp", "segments", "text", "utt2spk", "spk2utt", "utt2cond", "utt2dur", "phones.ctm")


def assert_same_dir(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).exists() == (b / name).exists(), name
        if (a / name).exists():
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("segments", [False, True])
def test_roundtrip_relative_paths(tmp_path, segments):
    root = write_toy_corpus(tmp_path / "corpus", {"train_sup": ["spkB", "spkA"]}, utts_per_speaker=3,
                           segments=segments)
    src = root / "data" / "train_sup"
    assert (src / "segments").exists() == segments
    prepared = load_kaldi_data_dir(src, root, min_duration=0.0)
    assert len(prepared.cuts) == 6
    cut = prepared.cuts["spkA-001"]
    sup = cut.supervisions[0]
    assert sup.text and sup.speaker == "spkA" and sup.custom["condition"] in ("clean", "noisy", "reverb",
                                                                              "noisy_reverb")
    assert sup.alignment["phone"][0].symbol and sup.start == 0.0
    # cut and manifests go through their JSONL.gz files
    for name, m in (("c", prepared.cuts), ("r", prepared.recordings), ("s", prepared.supervisions)):
        m.to_file(tmp_path / f"{name}.jsonl.gz")
    cuts = CutSet.from_file(tmp_path / "c.jsonl.gz")
    export_kaldi_dir(cuts, tmp_path / "back", audio_root=root)
    assert_same_dir(src, tmp_path / "back")
    recs = RecordingSet.from_file(tmp_path / "r.jsonl.gz")
    sups = SupervisionSet.from_file(tmp_path / "s.jsonl.gz")
    manifests_to_kaldi_dir(recs, sups, tmp_path / "back2", audio_root=root)
    assert_same_dir(src, tmp_path / "back2")


def test_segments_alignment_in_recording_time(tmp_path):
    root = write_toy_corpus(tmp_path / "c", {"s": ["spk1"]}, utts_per_speaker=3, unlabelled=(), segments=True,
                           durations=[0.5, 0.7, 0.6])
    p = load_kaldi_data_dir(root / "data" / "s", root, min_duration=0.0)
    assert len(p.recordings) == 1
    assert len(p.cuts) == 3
    sup = p.supervisions["spk1-001"]
    assert sup.start == pytest.approx(0.5)
    first_phone = read_kaldi_dir(root / "data" / "s").phones_ctm.entries["spk1-001"][0]
    assert sup.alignment["phone"][0].start == pytest.approx(0.5 + first_phone.start)
    cut = p.cuts["spk1-001"]
    assert cut.start == pytest.approx(0.5) and cut.duration == pytest.approx(0.7)
    assert cut.supervisions[0].alignment["phone"][0].start == pytest.approx(first_phone.start)
    audio = cut.load_audio()
    assert audio.shape == (1, 11200)


def test_roundtrip_absolute_paths_and_pipes(tmp_path):
    audio = tmp_path / "audio"
    write_toy_audio(audio / "a.wav", 8000)
    write_toy_audio(audio / "b.flac", 12000)
    write_toy_audio(audio / "c.wav", 9600)
    d = tmp_path / "dir"
    d.mkdir()
    lines = [f"u1 {audio / 'a.wav'}", f"u2 cat {audio / 'b.flac'} |"]
    if shutil.which("sox"):
        lines.append(f"u3 sox {audio / 'c.wav'} -t wav - |")
    (d / "wav.scp").write_text("".join(line + "\n" for line in lines))
    n = len(lines)
    utts = ["u1", "u2", "u3"][:n]
    (d / "text").write_text("".join(f"{u} HELLO  THERE {u}\n" for u in utts))  # inner spacing is kept
    (d / "utt2spk").write_text("".join(f"{u} s{u[-1]}\n" for u in utts))
    (d / "spk2utt").write_text("".join(f"s{u[-1]} {u}\n" for u in utts))
    p = load_kaldi_data_dir(d, audio_root=tmp_path / "elsewhere")
    assert p.recordings["u2"].sources[0].type == "command"
    assert p.recordings["u2"].num_samples == 12000
    assert p.cuts["u2"].load_audio().shape == (1, 12000)
    assert p.supervisions["u1"].text == "HELLO  THERE u1"
    export_kaldi_dir(p.cuts, tmp_path / "back", audio_root=tmp_path / "elsewhere")
    assert_same_dir(d, tmp_path / "back")
    # written without a root the plain paths stay absolute
    export_kaldi_dir(p.cuts, tmp_path / "back_abs")
    assert_same_dir(d, tmp_path / "back_abs")


def test_unsorted_input_is_written_sorted(tmp_path):
    root = write_toy_corpus(tmp_path / "c", {"s": ["spk1", "spk2"]}, unlabelled=(), with_ctm=False)
    d = root / "data" / "s"
    for name in ("wav.scp", "text", "utt2spk"):
        lines = (d / name).read_text().splitlines()
        (d / name).write_text("\n".join(reversed(lines)) + "\n")
    p = load_kaldi_data_dir(d, root)
    export_kaldi_dir(p.cuts, tmp_path / "back", audio_root=root)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2cond"):
        assert (tmp_path / "back" / name).read_text().splitlines() == sorted((d / name).read_text().splitlines())


def test_format_time():
    assert format_time(1.5) == "1.50"
    assert format_time(0) == "0.00"
    assert format_time(0.0625) == "0.0625"
    assert format_time(1 / 16000 * 3) == "0.0001875"
    assert format_time(0.1 + 0.2) == "0.30"


@pytest.mark.parametrize("segments", [False, True])
def test_roundtrip_fixed_decimals_and_utt2dur(tmp_path, segments):
    """The synthetic generator writes times with 4 decimals and an utt2dur: both come back alike."""
    root = write_toy_corpus(tmp_path / "c", {"s": ["spk1", "spk2"]}, unlabelled=(), segments=segments,
                           durations=[0.53125, 0.6])
    d = root / "data" / "s"
    kd = read_kaldi_dir(d)
    (d / "phones.ctm").write_text("".join(
        f"{u} 1 {e.start + 0.00003125:.4f} {e.duration:.4f} {e.symbol}\n"
        for u in sorted(kd.phones_ctm.entries) for e in kd.phones_ctm.entries[u]))
    durs = {u: (0.53125 if u.endswith("0") else 0.6) for u in kd.utt2spk.entries}
    if segments:
        seg = {u: (r.split()[0], f"{float(r.split()[1]):.4f}", f"{float(r.split()[2]):.4f}")
               for u, r in kd.segments.entries.items()}
        (d / "segments").write_text("".join(f"{u} {' '.join(seg[u])}\n" for u in sorted(seg)))
        durs = {u: float(seg[u][2]) - float(seg[u][1]) for u in seg}  # Kaldi's utt2dur: end - start
    (d / "utt2dur").write_text("".join(f"{u} {durs[u]:.4f}\n" for u in sorted(durs)))
    p = load_kaldi_data_dir(d, root, min_duration=0.0)
    assert p.kaldi_format.with_utt2dur and p.kaldi_format.decimals["phones.ctm"] == 4
    export_kaldi_dir(p.cuts, tmp_path / "back", audio_root=root, fmt=p.kaldi_format)
    assert_same_dir(d, tmp_path / "back")
    assert (d / "utt2dur").read_bytes() == (tmp_path / "back" / "utt2dur").read_bytes()
