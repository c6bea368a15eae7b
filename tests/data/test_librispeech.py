"""LibriSpeech: download of several subsets (archives made here, served through file:// URLs) and the
Kaldi data dirs made through lhotse's recipe, on a hand-made corpus in LibriSpeech's layout."""
from __future__ import annotations

import io
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrkit.data.librispeech import LibriSpeechError, download_librispeech, librispeech_kaldi_dirs


def flac_bytes(seconds: float = 0.5, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.random.default_rng(seed).normal(0, 0.1, int(16000 * seconds)).astype("float32"), 16000,
             format="FLAC")
    return buf.getvalue()


def write_subset(root: Path, subset: str, speakers, utts: int = 2, skip_audio=()) -> None:
    """<root>/<subset>/<spk>/<chapter>/<spk>-<chapter>-<i>.flac + <spk>-<chapter>.trans.txt"""
    for spk in speakers:
        chapter = spk * 10
        d = root / subset / str(spk) / str(chapter)
        d.mkdir(parents=True)
        lines = []
        for i in range(utts):
            uid = f"{spk}-{chapter}-{i:04d}"
            if uid not in skip_audio:
                (d / f"{uid}.flac").write_bytes(flac_bytes(seed=spk * 100 + i))
            lines.append(f"{uid} HELLO WORLD NUMBER {i}\n")
        (d / f"{spk}-{chapter}.trans.txt").write_text("".join(lines))


def make_archive(server: Path, subset: str, spk: int) -> Path:
    """An archive laid out as OpenSLR's: every member under LibriSpeech/<subset>/."""
    tree = server / "tree" / subset
    write_subset(tree / "LibriSpeech", subset, [spk])
    archive = server / f"{subset}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree / "LibriSpeech", arcname="LibriSpeech")
    return archive


def test_download_keeps_every_subset_and_skips_when_done(tmp_path, monkeypatch):
    server = tmp_path / "server"
    server.mkdir()
    for subset, spk in (("dev-clean", 11), ("test-clean", 12)):
        make_archive(server, subset, spk)
    dest = tmp_path / "download"
    root = download_librispeech(dest, ["dev-clean", "test-clean"], base_url=server.as_uri(), sha256={})
    assert root == dest / "LibriSpeech"
    # the second archive's LibriSpeech/ top folder must not replace the first subset
    assert (root / "dev-clean" / "11" / "110" / "11-110-0000.flac").stat().st_size > 0
    assert (root / "test-clean" / "12" / "120" / "12-120.trans.txt").read_text().startswith("12-120-0000 HELLO")
    assert not list(dest.glob(".*.staging"))

    def no_network(*a, **k):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert download_librispeech(dest, ["dev-clean", "test-clean"], base_url=server.as_uri(), sha256={}) == root


def test_download_checks_openslrs_sha256(tmp_path):
    """By default an archive must be OpenSLR's (sha256): one made here is refused, and nothing is kept."""
    import hashlib

    from asrkit.bin import prepare_librispeech
    from asrkit.data.download import ChecksumError
    from asrkit.data.librispeech import SHA256, SUBSETS

    assert set(SHA256) == set(SUBSETS) and all(len(v) == 64 for v in SHA256.values())
    server = tmp_path / "server"
    server.mkdir()
    archive = make_archive(server, "dev-clean", 11)
    with pytest.raises(ChecksumError, match=f"expected {SHA256['dev-clean']}"):
        download_librispeech(tmp_path / "dl", ["dev-clean"], base_url=server.as_uri())
    assert not (tmp_path / "dl" / "dev-clean.tar.gz").exists() and not (tmp_path / "dl" / "LibriSpeech").exists()
    own = {"dev-clean": hashlib.sha256(archive.read_bytes()).hexdigest()}
    assert (download_librispeech(tmp_path / "dl", ["dev-clean"], base_url=server.as_uri(), sha256=own)
            / "dev-clean").is_dir()
    common = ["download", "--subsets", "dev-clean", "--base-url", server.as_uri()]
    assert prepare_librispeech.main([*common, "--dest", str(tmp_path / "cli")]) == 1
    assert prepare_librispeech.main([*common, "--dest", str(tmp_path / "cli"), "--no-checksum"]) == 0


def test_download_refuses_a_foreign_archive(tmp_path):
    server = tmp_path / "server"
    (server / "x").mkdir(parents=True)
    (server / "x" / "README").write_text("not librispeech\n")
    with tarfile.open(server / "dev-other.tar.gz", "w:gz") as tar:
        tar.add(server / "x", arcname="Other")
    with pytest.raises(LibriSpeechError, match="no LibriSpeech/dev-other"):
        download_librispeech(tmp_path / "dl", ["dev-other"], base_url=server.as_uri(), sha256=None)
    with pytest.raises(LibriSpeechError, match="unknown LibriSpeech subset"):
        download_librispeech(tmp_path / "dl", ["dev-noisy"], base_url=server.as_uri())


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "LibriSpeech"
    write_subset(root, "train-clean-100", [1, 2])
    write_subset(root, "train-clean-360", [3])
    write_subset(root, "train-other-500", [4])
    for i, s in enumerate(("dev-clean", "dev-other", "test-clean", "test-other")):
        write_subset(root, s, [5 + i])
    return root


def test_kaldi_dirs_keep_unlabelled_text_only_in_the_oracle(corpus, tmp_path):
    out = tmp_path / "kaldi"
    res = librispeech_kaldi_dirs(corpus, out)
    assert (out / "train_sup" / "text").read_text().splitlines()[0] == "1-10-0000 HELLO WORLD NUMBER 0"
    assert (out / "train_sup" / "wav.scp").read_text().splitlines()[0] == \
        "1-10-0000 train-clean-100/1/10/1-10-0000.flac"
    assert not (out / "train_unsup" / "text").exists()
    unsup = [line.split()[0] for line in (out / "train_unsup" / "utt2spk").read_text().splitlines()]
    assert unsup == ["3-30-0000", "3-30-0001", "4-40-0000", "4-40-0001"]  # both subsets
    oracle = res["oracle_train_unsup"].read_text().splitlines()
    assert [line.split()[0] for line in oracle] == unsup
    for s in ("dev_clean", "dev_other", "test_clean", "test_other"):
        assert len((out / s / "text").read_text().splitlines()) == 2


def test_missing_audio_is_an_error_naming_the_file_or_a_counted_skip(tmp_path):
    root = tmp_path / "LibriSpeech"
    write_subset(root, "dev-clean", [7], utts=3, skip_audio={"7-70-0001"})
    with pytest.raises(LibriSpeechError, match=r"1 of 3 utterances .*7-70-0001\.flac.*7-70\.trans\.txt"):
        librispeech_kaldi_dirs(root, tmp_path / "k1", sets=["dev_clean"])
    librispeech_kaldi_dirs(root, tmp_path / "k2", sets=["dev_clean"], on_error="skip")
    assert len((tmp_path / "k2" / "dev_clean" / "text").read_text().splitlines()) == 2
    assert "skipped 1 utterance(s) without audio: 7-70-0001" in (tmp_path / "k2" / "prepare_report.txt").read_text()


def test_missing_subset_and_shared_speakers_are_refused(tmp_path):
    root = tmp_path / "LibriSpeech"
    write_subset(root, "dev-clean", [7])
    with pytest.raises(LibriSpeechError, match="missing: dev-other"):
        librispeech_kaldi_dirs(root, tmp_path / "k", sets=["dev_clean", "dev_other"])
    write_subset(root, "dev-other", [8])
    (root / "dev-other" / "8" / "80" / "8-80.trans.txt").unlink()
    write_subset(root, "test-clean", [7])  # reader 7 again
    with pytest.raises(LibriSpeechError, match="speaker 7 is in both dev_clean and test_clean"):
        librispeech_kaldi_dirs(root, tmp_path / "k", sets=["dev_clean", "test_clean"])
