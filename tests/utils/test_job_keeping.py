"""$cmd keeps its jobs in reach: a recipe killed by SIGKILL (its whole process group, or its bash
alone) leaves no job and no grandchild running; what a job leaves behind ends with it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from asrkit.testing.processes import process_alive

REPO = Path(__file__).resolve().parents[2]

# Each job records its pid, a background grandchild's and a setsid'ed (escaped session) one's.
JOB = ("echo $$ > pids/job.JOB; sleep 300 & echo $! > pids/child.JOB; "
       "setsid sleep 301 & echo $! > pids/escaped.JOB; wait")


def make_recipe(tmp_path: Path) -> Path:
    """A recipe as egs/TEMPLATE/s5 runs one: path.sh, cmd.sh (run_local.sh), utils -> the repository's."""
    r = tmp_path / "s5"
    r.mkdir()
    for f in ("path.sh", "cmd.sh"):
        shutil.copy(REPO / "egs/TEMPLATE/s5" / f, r / f)
    (r / "utils").symlink_to(REPO / "utils")
    (r / "pids").mkdir()
    (r / "run.sh").write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n. ./path.sh\n. ./cmd.sh\n"
        f"$train_cmd JOB=1:2 exp/x/log/job.JOB.log '{JOB}'\n")
    (r / "run.sh").chmod(0o755)
    return r


def start_and_wait_for_jobs(recipe: Path) -> tuple:
    proc = subprocess.Popen(["./run.sh"], cwd=recipe, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "ASRKIT_ROOT": str(REPO)})
    want = [recipe / "pids" / f"{k}.{j}" for k in ("job", "child", "escaped") for j in (1, 2)]
    deadline = time.time() + 30
    while not all(p.exists() and p.read_text().strip() for p in want):
        assert time.time() < deadline, "the jobs did not start"
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    pids = [int(p.read_text()) for p in want]
    assert all(process_alive(p) for p in pids)
    return proc, pids


def wait_all_dead(pids, timeout: float = 10.0) -> list:
    deadline = time.time() + timeout
    while time.time() < deadline and any(process_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if process_alive(p)]


def wait_for_text(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.time() + timeout
    while text not in path.read_text() and time.time() < deadline:
        time.sleep(0.05)
    return path.read_text()


def test_sigkill_of_the_recipe_group_ends_every_job_and_grandchild(tmp_path):
    recipe = make_recipe(tmp_path)
    proc, pids = start_and_wait_for_jobs(recipe)
    os.killpg(proc.pid, signal.SIGKILL)  # what a scheduler, an OOM killer of the group or a closed terminal does
    proc.wait()
    survivors = wait_all_dead(pids)
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert survivors == [], f"still running after the recipe's SIGKILL: {survivors}"
    # the keeper says why the job ended (the runner, killed, cannot)
    assert "Killed with its runner" in wait_for_text(recipe / "exp/x/log/job.1.log", "Killed with its runner")


def test_sigkill_of_the_recipe_bash_alone_ends_every_job(tmp_path):
    recipe = make_recipe(tmp_path)
    proc, pids = start_and_wait_for_jobs(recipe)
    os.kill(proc.pid, signal.SIGKILL)  # only run.sh's bash: the runner hears of it (parent-death signal)
    proc.wait()
    survivors = wait_all_dead(pids)
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert survivors == [], f"still running after run.sh's SIGKILL: {survivors}"
    assert "Killed by run_local.sh (SIGTERM)" in wait_for_text(recipe / "exp/x/log/job.2.log", "Killed by")


def test_sigkill_of_a_keeper_still_ends_its_job(tmp_path):
    """The job's bash has a parent-death signal; the runner reports the job as killed."""
    (tmp_path / "pids").mkdir()
    proc = subprocess.Popen([str(REPO / "utils/run_local.sh"), "log/k.log", "echo $$ > pids/job; echo $PPID > pids/keeper; "
                             "sleep 300"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not ((tmp_path / "pids/keeper").exists() and (tmp_path / "pids/keeper").read_text().strip()):
        assert time.time() < deadline
        time.sleep(0.05)
    job, keeper = int((tmp_path / "pids/job").read_text()), int((tmp_path / "pids/keeper").read_text())
    os.kill(keeper, signal.SIGKILL)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1 and "SIGKILL" in err
    assert wait_all_dead([job]) == []


def test_processes_a_job_leaves_running_end_with_it(tmp_path):
    r = subprocess.run([str(REPO / "utils/run_local.sh"), "log/b.log", "sleep 300 & echo $! > bg.pid; echo done"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert wait_all_dead([int((tmp_path / "bg.pid").read_text())]) == []
    log = (tmp_path / "log/b.log").read_text()
    assert "1 process(es) the job left running were ended with it" in log
    assert "# Ended (code 0)" in log
