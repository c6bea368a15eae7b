"""utils/run_slurm.sh against a real one-node Slurm (the slurm_cluster fixture of conftest.py): array
jobs, per-job logs where Kaldi puts them, a failing job's log tail, --gpus/--mem passed through, and
a recipe killed by SIGKILL cancelling its jobs."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from asrkit.testing.processes import process_alive

REPO = Path(__file__).resolve().parents[2]
RUN_SLURM = str(REPO / "utils" / "run_slurm.sh")


def run(cwd: Path, env, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def job_id(work: Path, base: str) -> str:
    text = (work / "exp/log/q" / f"{base}.sbatch.out").read_text()
    return re.search(r"^(\d+)", text, re.M).group(1)


def scontrol_job(env, jid: str) -> str:
    return subprocess.run(["scontrol", "show", "job", jid], capture_output=True, text=True, env=env).stdout


def test_array_job_per_job_logs_and_resources(slurm_cluster, tmp_path):
    env = slurm_cluster
    r = run(tmp_path, env, RUN_SLURM, "--mem", "200M", "--gpus", "1", "--time", "0:10:00", "JOB=1:3",
            "exp/log/step.JOB.log", "echo", "task", "JOB", "gpu=$CUDA_VISIBLE_DEVICES", "&&", "sleep", "0.5")
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        lines = (tmp_path / f"exp/log/step.{j}.log").read_text().splitlines()
        assert lines[0] == f"# echo task {j} gpu=$CUDA_VISIBLE_DEVICES && sleep 0.5"
        assert re.match(rf"# Running on \S+ \(slurm job \d+, task {j}\)", lines[1])
        assert f"task {j} gpu=0" in lines  # Slurm gave it the (fake) GPU
        assert lines[-1].startswith("# Ended (code 0)")
    info = scontrol_job(env, job_id(tmp_path, "step"))
    assert "ArrayTaskId=" in info
    assert re.search(r"MinMemoryNode=200M", info), info
    assert re.search(r"TresPerJob=(gres:)?gpu:1", info), info
    assert "TimeLimit=00:10:00" in info


def test_failing_job_fails_the_stage_with_its_log_tail(slurm_cluster, tmp_path):
    r = run(tmp_path, slurm_cluster, RUN_SLURM, "--gpus", "0", "JOB=1:3", "exp/log/f.JOB.log",
            "seq 100 130; [ JOB != 2 ]")
    assert r.returncode == 1
    assert "1 / 3 failed (jobs 2)" in r.stderr and "exp/log/f.2.log" in r.stderr and "exit code 1" in r.stderr
    assert "\n130\n" in r.stderr  # the tail of the failing job's log
    assert "# Ended (code 0)" in (tmp_path / "exp/log/f.3.log").read_text()


def test_sigkill_of_the_recipe_cancels_its_jobs(slurm_cluster, tmp_path):
    env = slurm_cluster
    (tmp_path / "run.sh").write_text(
        f"#!/usr/bin/env bash\n{RUN_SLURM} --gpus 0 JOB=1:2 exp/log/k.JOB.log 'echo $$ > pid.JOB; sleep 300'\n")
    (tmp_path / "run.sh").chmod(0o755)
    recipe = subprocess.Popen(["./run.sh"], cwd=tmp_path, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not all((tmp_path / f"pid.{j}").exists() and (tmp_path / f"pid.{j}").read_text().strip()
                      for j in (1, 2)):
            assert time.time() < deadline, "the jobs did not start"
            assert recipe.poll() is None, recipe.stderr.read()
            time.sleep(0.2)
        jid = job_id(tmp_path, "k")
        pids = [int((tmp_path / f"pid.{j}").read_text()) for j in (1, 2)]
    finally:
        os.killpg(recipe.pid, signal.SIGKILL)  # as a scheduler or an OOM killer would
        recipe.wait()
    deadline = time.time() + 30
    while time.time() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", jid], capture_output=True, text=True, env=env).stdout.strip()
        if not queued and not any(Path(f"/proc/{p}").exists() and process_alive(p) for p in pids):
            break
        time.sleep(0.3)
    assert not queued, f"still queued after the recipe's SIGKILL:\n{queued}"
    assert not [p for p in pids if process_alive(p)]
    assert "JobState=CANCELLED" in scontrol_job(env, jid)
    assert f"cancelled job {jid}" in (tmp_path / "exp/log/q/k.sbatch.out").read_text()
