"""asrkit.utils.dirlock: one writer per output directory, the second refused with the holder named."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asrkit.utils.dirlock import OutputLocked, claim_output, locked_output, releases_claims

REPO = Path(__file__).resolve().parents[2]
HOLD = ("import sys, time; from asrkit.utils.dirlock import locked_output\n"
        "with locked_output(sys.argv[1]):\n    print('held', flush=True); time.sleep(300)\n")


@pytest.fixture
def holder(tmp_path):
    """Another process holding tmp_path/out's lock."""
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.stdout.readline().strip() == "held"
    yield out, p
    p.kill()
    p.wait()


def test_second_writer_refused_with_the_holders_pid(holder):
    out, p = holder
    with pytest.raises(OutputLocked, match=rf"{out} is being written by another process \(pid {p.pid} on .*-c"):
        with locked_output(out):
            pass


def test_lock_released_when_the_holder_dies_by_sigkill(holder):
    out, p = holder
    p.send_signal(signal.SIGKILL)
    p.wait()
    with locked_output(out):  # not stale: the kernel dropped it
        assert f"pid {os.getpid()}" in (out / ".lock").read_text()


def test_reentrant_within_a_process_and_released_after(tmp_path):
    with locked_output(tmp_path / "d"):
        with locked_output(tmp_path / "d"):
            pass
        r = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(300)", "pass"), str(tmp_path / "d")],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert r.returncode == 1 and f"pid {os.getpid()}" in r.stderr  # still held by us
    r = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(300)", "pass"), str(tmp_path / "d")],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr


def test_claim_ends_the_program_and_a_decorated_main_releases(holder, tmp_path):
    out, p = holder
    with pytest.raises(SystemExit, match=rf"^prog: .*pid {p.pid}"):
        claim_output(out, "prog")

    @releases_claims
    def main(d):
        claim_output(d, "prog")
        return (d / ".lock").read_text()

    assert main(tmp_path / "free").startswith(f"pid {os.getpid()} ")
    with locked_output(tmp_path / "free"):  # released by the decorator, re-taken here
        pass


@pytest.mark.parametrize("argv", [
    ["asrkit.bin.compute_features", "--cuts", "missing.jsonl.gz", "--set", "s", "--out-dir"],
    ["asrkit.bin.train_nnet", "--config", str(REPO / "egs/synth/s5/conf/teacher.yaml"), "--train-cuts",
     str(REPO / "setup.cfg"), "--cmvn", str(REPO / "setup.cfg"), "--num-senones", "3", "--out-dir"],
])
def test_a_trainer_or_stage_writer_is_refused_on_a_locked_folder(holder, argv):
    out, p = holder
    r = subprocess.run([sys.executable, "-m", *argv, str(out)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode != 0
    assert f"being written by another process (pid {p.pid}" in r.stderr, r.stderr[-2000:]


KILLED_WRITER = ("import os, sys; from pathlib import Path; from asrkit.utils.atomic import atomic_path\n"
                 "with atomic_path(Path(sys.argv[1]) / sys.argv[2]) as tmp:\n"
                 "    tmp.mkdir() if sys.argv[3] == 'dir' else tmp.touch()\n"
                 "    os.kill(os.getpid(), 9)\n")


def killed_writer_leftover(folder: Path, name: str, kind: str) -> str:
    """What atomic_path leaves when its process is SIGKILLed mid-write; returns the leftover's name."""
    before = set(os.listdir(folder)) if folder.exists() else set()
    r = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), name, kind],
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == -signal.SIGKILL
    (left,) = set(os.listdir(folder)) - before
    return left


def test_claim_removes_the_temporaries_of_a_killed_writer(tmp_path, caplog):
    out = tmp_path / "exp"
    out.mkdir()
    storage = killed_writer_leftover(out, "storage_dev", "dir")  # compute_features' storage
    model = killed_writer_leftover(out, "3.mdl", "file")  # a GMM iteration's 0-byte model
    assert storage.startswith(".storage_dev.tmp") and model.startswith(".3.tmp") and model.endswith(".mdl")
    (out / "3.mdl").write_text("kept")
    (out / ".notes.tmp").write_text("not atomic_path's: kept")

    @releases_claims
    def main():
        claim_output(out, "train_gmm")

    main()
    assert sorted(os.listdir(out)) == [".lock", ".notes.tmp", "3.mdl"]
    assert "train_gmm: removed 2 leftover(s) of a killed run" in caplog.text
