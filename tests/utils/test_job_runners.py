"""utils/run_local.sh and utils/run_slurm.sh: the Kaldi run.pl interface, logs, limits, failures."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN_LOCAL = str(REPO / "utils" / "run_local.sh")
RUN_SLURM = str(REPO / "utils" / "run_slurm.sh")


def run(cwd: Path, *argv: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


# ------------------------------------------------------------------------------------------ local
def test_all_jobs_run_with_job_substituted_one_log_each(tmp_path):
    r = run(tmp_path, RUN_LOCAL, "JOB=1:4", "exp/x/log/step.JOB.log",
            "echo", "job JOB of 4", ">", "out.JOB.txt", "&&", "echo", "JOB", "|", "tr", "0-9", "a-j")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    logs = sorted((tmp_path / "exp/x/log").glob("step.*.log"))
    assert [p.name for p in logs] == [f"step.{j}.log" for j in range(1, 5)]
    for j in range(1, 5):
        assert (tmp_path / f"out.{j}.txt").read_text() == f"job {j} of 4\n"
        lines = (tmp_path / f"exp/x/log/step.{j}.log").read_text().splitlines()
        # command line at the top (with JOB substituted), then the start time
        assert lines[0] == f"# echo 'job {j} of 4' > out.{j}.txt && echo {j} | tr 0-9 a-j"
        assert lines[1].startswith("# Started at ")
        assert "abcdefghij"[j] in lines  # the pipe ran: output of tr
        # accounting and exit status at the bottom
        assert re.match(r"^# Accounting: time=\d+ threads=1$", lines[-2])
        assert re.match(r"^# Ended \(code 0\) at .+, elapsed time \d+ seconds$", lines[-1])


def test_single_job_form(tmp_path):
    r = run(tmp_path, RUN_LOCAL, "log/one.log", "echo hello | wc -c")  # one word: a command line
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "log/one.log").read_text()
    assert text.startswith("# echo hello | wc -c\n")
    assert "\n6\n" in text and "# Ended (code 0)" in text


def test_arguments_with_spaces_and_quotes_stay_whole(tmp_path):
    r = run(tmp_path, RUN_LOCAL, "JOB=2:3", "log/a.JOB.log", "printf", "<%s>\\n",
            "a b", "it's", 'say "JOB"', "", "$HOME")
    assert r.returncode == 0, r.stderr
    out = (tmp_path / "log/a.3.log").read_text().splitlines()[3:-2]
    assert out == ["<a b>", "<it's>", '<say "3">', "<>", f"<{os.environ['HOME']}>"]
    assert not (tmp_path / "log/a.1.log").exists()


def _intervals(d: Path):
    iv = []
    for f in d.glob("t.*"):
        s, e = map(float, f.read_text().split())
        iv.append((s, e))
    return iv


def _max_overlap(iv) -> int:
    events = sorted([(s, 1) for s, _ in iv] + [(e, -1) for _, e in iv], key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


@pytest.mark.parametrize("k", [1, 2])
def test_parallel_limit_respected(tmp_path, k):
    (tmp_path / "times").mkdir()
    cmd = ("s=$(date +%s.%N); sleep 0.3; e=$(date +%s.%N); echo $s $e > times/t.JOB")
    r = run(tmp_path, RUN_LOCAL, "--max-jobs-run", str(k), "--mem", "4G", "--gpu", "1",
            "JOB=1:5", "log/p.JOB.log", cmd)
    assert r.returncode == 0, r.stderr
    iv = _intervals(tmp_path / "times")
    assert len(iv) == 5
    assert _max_overlap(iv) == k  # never more than k at once, and k at once do run


def test_default_limit_is_number_of_cpus(tmp_path):
    n = len(os.sched_getaffinity(0))
    (tmp_path / "times").mkdir()
    cmd = "s=$(date +%s.%N); sleep 0.2; e=$(date +%s.%N); echo $s $e > times/t.JOB"
    r = run(tmp_path, RUN_LOCAL, "JOB=1:" + str(n + 1), "log/p.JOB.log", cmd)
    assert r.returncode == 0, r.stderr
    assert _max_overlap(_intervals(tmp_path / "times")) <= n


def test_failure_report(tmp_path):
    # jobs 2 and 4 of 4 fail; job 2 prints 40 numbered lines first
    cmd = "if [ JOB = 2 ] || [ JOB = 4 ]; then seq 1 40; echo boom-JOB >&2; exit 3; fi; echo ok"
    r = run(tmp_path, RUN_LOCAL, "JOB=1:4", "exp/log/f.JOB.log", cmd)
    assert r.returncode == 1
    err = r.stderr
    assert "2 / 4 failed" in err
    assert "exp/log/f.2.log" in err and "exit code 3" in err
    # the tail of the first failing log, not only its path
    assert "boom-2" in err and "\n40\n" in err and "\n25\n" in err
    assert "\n5\n" not in err  # only the last ~20 lines
    assert "boom-4" not in err
    # the other jobs still ran to the end
    assert "# Ended (code 0)" in (tmp_path / "exp/log/f.3.log").read_text()
    assert "# Ended (code 3)" in (tmp_path / "exp/log/f.4.log").read_text()


def test_pipefail_and_killed_job(tmp_path):
    r = run(tmp_path, RUN_LOCAL, "log/p.log", "false | cat")
    assert r.returncode == 1 and "job failed" in r.stderr and "log/p.log" in r.stderr
    r = run(tmp_path, RUN_LOCAL, "log/k.log", "kill -9 $$")
    assert r.returncode == 1 and "SIGKILL" in r.stderr


@pytest.mark.parametrize("args,msg", [
    (["JOB=3:2", "log/a.JOB.log", "true"], "invalid job range"),
    (["JOB=1:2", "log/a.log", "true"], "must contain JOB"),
    (["--max-jobs-run", "0", "JOB=1:2", "log/a.JOB.log", "true"], "positive integer"),
    (["log/a.log"], "need a log file and a command"),
])
def test_usage_errors(tmp_path, args, msg):
    r = run(tmp_path, RUN_LOCAL, *args)
    assert r.returncode == 1
    assert msg in r.stderr and "Usage:" in r.stderr


def test_other_job_variable_name(tmp_path):
    r = run(tmp_path, RUN_LOCAL, "SPLIT=1:2", "log/s.SPLIT.log", "echo", "part-SPLIT")
    assert r.returncode == 0, r.stderr
    assert "part-2" in (tmp_path / "log/s.2.log").read_text()


def test_interrupt_kills_running_jobs(tmp_path):
    p = subprocess.Popen([RUN_LOCAL, "--max-jobs-run", "2", "JOB=1:4", "log/i.JOB.log",
                          "sleep 30; touch done.JOB"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while time.time() < deadline and not (tmp_path / "log/i.2.log").exists():
        time.sleep(0.05)
    time.sleep(0.2)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=10)
    assert time.time() - t0 < 5
    assert p.returncode == 128 + signal.SIGTERM
    assert "interrupted" in err
    assert "Killed by" in (tmp_path / "log/i.1.log").read_text()
    assert not (tmp_path / "log/i.3.log").exists()  # never started
    assert not list(tmp_path.glob("done.*"))


# ------------------------------------------------------------------------------------------ slurm
FAKE_SBATCH = r"""#!/usr/bin/env bash
# A stand-in for sbatch --wait: runs the job script once per array index, here and now.
printf '%s\n' "$@" > "$FAKE_SLURM_DIR/sbatch.args"
array=; out=; script=
for a in "$@"; do
  case $a in
    --array=*) array=${a#--array=} ;;
    --output=*) out=${a#--output=} ;;
    -*) ;;
    *) script=$a ;;
  esac
done
echo 777
rc=0
if [ -n "$array" ]; then
  range=${array%%\%*}; lo=${range%-*}; hi=${range#*-}
  for ((i = lo; i <= hi; i++)); do
    SLURM_JOB_ID=777 SLURM_ARRAY_TASK_ID=$i bash "$script" > "${out//%a/$i}" 2>&1 || rc=$?
  done
else
  SLURM_JOB_ID=777 bash "$script" > "$out" 2>&1 || rc=$?
fi
exit $rc
"""


@pytest.fixture
def fake_slurm(tmp_path):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    sb = bindir / "sbatch"
    sb.write_text(FAKE_SBATCH)
    sb.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", FAKE_SLURM_DIR=str(bindir))
    work = tmp_path / "work"
    work.mkdir()
    return work, env, bindir


def test_slurm_array_job(fake_slurm):
    work, env, bindir = fake_slurm
    # options from the $cmd string, then from the call (the later --mem wins)
    r = run(work, RUN_SLURM, "--mem", "4G", "--gpus", "1", "--time", "1:00:00",
            "--partition", "gpu", "--mem=8G", "--num-threads", "2", "--max-jobs-run", "2",
            "JOB=1:3", "exp/x/log/step.JOB.log", "echo", "task JOB", "|", "tr", "a-z", "A-Z",
            env=env)
    assert r.returncode == 0, r.stderr
    args = (bindir / "sbatch.args").read_text().splitlines()
    for a in ["--wait", "--array=1-3%2", "--mem=8G", "--gpus=1", "--time=1:00:00",
              "--partition=gpu", "--cpus-per-task=2"]:
        assert a in args
    assert "--mem=4G" not in args
    script = Path(args[-1])
    assert script.exists() and script.parent == work / "exp/x/log/q"
    for j in (1, 2, 3):
        lines = (work / f"exp/x/log/step.{j}.log").read_text().splitlines()
        assert lines[0] == f"# echo 'task {j}' | tr a-z A-Z"
        assert f"TASK {j}" in lines
        assert lines[-1].startswith("# Ended (code 0)")


def test_slurm_single_job_and_gpu_zero(fake_slurm):
    work, env, bindir = fake_slurm
    r = run(work, RUN_SLURM, "--gpu", "0", "exp/log/one.log", "echo", "one", env=env)
    assert r.returncode == 0, r.stderr
    args = (bindir / "sbatch.args").read_text().splitlines()
    assert not any(a.startswith("--array") or a.startswith("--gpus") for a in args)
    assert "\none\n" in (work / "exp/log/one.log").read_text()


def test_slurm_failure_report(fake_slurm):
    work, env, _ = fake_slurm
    cmd = "seq 100 130; [ JOB != 2 ] && [ JOB != 3 ]"
    r = run(work, RUN_SLURM, "JOB=1:3", "exp/log/f.JOB.log", cmd, env=env)
    assert r.returncode == 1
    assert "2 / 3 failed" in r.stderr and "exp/log/f.2.log" in r.stderr
    assert "\n130\n" in r.stderr  # tail of the failing log


def test_slurm_task_killed_without_footer(fake_slurm):
    work, env, _ = fake_slurm
    # the task kills its own job script, as Slurm does at a time or memory limit
    r = run(work, RUN_SLURM, "JOB=1:2", "exp/log/k.JOB.log",
            "echo started; [ JOB = 1 ] || kill -9 $PPID", env=env)
    assert r.returncode == 1
    assert "1 / 2 failed" in r.stderr and "no exit status" in r.stderr
    assert "started" in r.stderr


def test_slurm_without_sbatch(tmp_path):
    if shutil.which("sbatch"):
        pytest.skip("a real sbatch is on PATH")
    r = run(tmp_path, RUN_SLURM, "JOB=1:2", "log/a.JOB.log", "true")
    assert r.returncode == 1 and "sbatch not found" in r.stderr
