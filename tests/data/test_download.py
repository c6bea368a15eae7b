"""Download with resume and checksum, extraction with a done marker, through file:// URLs."""
from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

import pytest

from asrkit.bin import download as download_cli
from asrkit.data.download import ChecksumError, download_and_extract, download_url, extract_tar


def make_archive(tmp_path: Path) -> Path:
    archive = tmp_path / "server" / "corpus.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("corpus/README.md", b"hello\n"), ("corpus/train/text", b"u1 A B\n" * 5000)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_and_extract_then_skip(tmp_path, monkeypatch):
    archive = make_archive(tmp_path)
    dest = tmp_path / "download"
    paths = download_and_extract(archive.as_uri(), dest, md5=md5(archive))
    assert paths == [dest / "corpus"]
    assert (dest / "corpus" / "train" / "text").read_bytes() == b"u1 A B\n" * 5000
    assert (dest / "corpus.tar.gz").read_bytes() == archive.read_bytes()
    assert not (dest / "corpus.tar.gz.part").exists()
    assert sorted(p.name for p in dest.iterdir() if p.name.startswith(".") is False) == [
        "corpus", "corpus.tar.gz", "corpus.tar.gz.extracted"]

    # a re-run neither downloads nor extracts
    def no_network(*a, **k):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(tarfile, "open", no_network)
    assert download_and_extract(archive.as_uri(), dest, md5=md5(archive)) == [dest / "corpus"]


def test_resume_partial_download(tmp_path, caplog):
    archive = make_archive(tmp_path)
    dest = tmp_path / "d" / "corpus.tar.gz"
    dest.parent.mkdir()
    data = archive.read_bytes()
    (dest.parent / "corpus.tar.gz.part").write_bytes(data[: len(data) // 2])
    with caplog.at_level("INFO"):
        download_url(archive.as_uri(), dest, md5=md5(archive))
    assert dest.read_bytes() == data
    assert any(f"resuming {archive.as_uri()} at byte {len(data) // 2}" in r.getMessage() for r in caplog.records)


def test_checksum_mismatch(tmp_path):
    archive = make_archive(tmp_path)
    dest = tmp_path / "d" / "corpus.tar.gz"
    with pytest.raises(ChecksumError, match="md5"):
        download_url(archive.as_uri(), dest, md5="0" * 32)
    assert not dest.exists() and not (dest.parent / "corpus.tar.gz.part").exists()
    with pytest.raises(ChecksumError, match="sha256 is [0-9a-f]{64}, expected 0+;"):
        download_url(archive.as_uri(), dest, md5=md5(archive), sha256="0" * 64)  # md5 right, sha256 wrong
    assert not dest.exists()
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert download_url(archive.as_uri(), dest, md5=md5(archive), sha256=sha.upper()) == dest


def test_interrupted_extraction_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(make_archive(tmp_path).read_bytes()[:200])  # truncated
    with pytest.raises(Exception):
        extract_tar(bad, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(download_cli, "setup_logging", lambda verbose=False: None)
    archive = make_archive(tmp_path)
    assert download_cli.main(["--url", archive.as_uri(), "--dest", str(tmp_path / "x"), "--md5", md5(archive)]) == 0
    assert (tmp_path / "x" / "corpus" / "README.md").exists()
    assert download_cli.main(["--url", archive.as_uri(), "--dest", str(tmp_path / "y"), "--md5", "1" * 32]) == 1
