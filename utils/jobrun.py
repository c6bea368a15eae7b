#!/usr/bin/env python3
"""Kaldi-style job runners behind utils/run_local.sh and utils/run_slurm.sh (stdlib only).

Interface (that of Kaldi's run.pl / queue.pl / slurm.pl):

    $cmd [options] JOB=1:N exp/x/log/step.JOB.log command args ... JOB ...
    $cmd [options] exp/x/log/step.log command args ...

The literal job variable (JOB, or any name given as NAME=a:b) is replaced by the job index in the
log path and in the command, wherever it occurs (plain substring replacement, as in Kaldi).  The
command words are joined into one bash command line: a word without white space is taken as it is
(so "|", ">" and "&&" act as shell operators), a word with white space is quoted (so
"ark:gunzip -c x.gz |" stays one argument), and so is one with a quote or a backslash; a command
given as one word alone is the whole command line, verbatim ("sort JOB.txt | uniq -c").  It runs
as `bash -o pipefail -c LINE`, stdin from /dev/null, stdout and stderr appended to the log, which
starts with "# LINE" and "# Started at DATE" and ends with "# Accounting: time=S threads=T" and
"# Ended (code C) at DATE, elapsed time S seconds".  If any job fails, the runner exits 1 after
printing to stderr how many of the N jobs failed, the log of the first failing job (lowest index)
and that log's last lines.

Options (before JOB=..., either "--name value" or "--name=value"):
    --max-jobs-run K (-tc K)   at most K jobs at once (local default: number of CPUs;
                               slurm: array throttle --array=1-N%K, default none)
    --mem M, --gpu N / --gpus N, --num-threads N / --cpus-per-task N, --time T, --partition P
                               Slurm resources; --gpu 0 asks for no GPU.  The local runner accepts
                               and ignores them (as Kaldi's run.pl does), so one $cmd string serves both.
    any other --name value     local: ignored;  slurm: passed to sbatch as --name=value.
Later options override earlier ones, so `$train_cmd --mem 16G ...` overrides a --mem in cmd.sh.
"""
from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

TAIL_LINES = 20
ARRAY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+):(\d+)$")
SINGLE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+)$")
ENDED_RE = re.compile(r"^# Ended \(code (-?\d+)\)", re.MULTILINE)


class UsageError(Exception):
    pass


@dataclass
class Spec:
    prog: str
    options: Dict[str, str] = field(default_factory=dict)  # normalised name -> value, last wins
    jobname: Optional[str] = None  # e.g. "JOB"; None for the single-job form
    start: int = 1
    end: int = 1
    log: str = ""  # log path template
    command: str = ""  # bash command line template

    @property
    def ids(self) -> List[int]:
        return list(range(self.start, self.end + 1))

    def subst(self, template: str, jobid: int) -> str:
        if self.jobname is None:
            return template
        return template.replace(self.jobname, str(jobid))


ALIASES = {"tc": "max_jobs_run", "gpus": "gpu", "cpus_per_task": "num_threads"}


def join_command(words: List[str]) -> str:
    """Kaldi's rule: words without white space as they are, others quoted (single quotes, safely);
    unlike Kaldi, a word with a quote or a backslash is quoted too (it holds literal data).
    One word alone is the whole command line, taken verbatim ("cmd a | cmd b")."""
    if len(words) == 1:
        return words[0]
    out = []
    for w in words:
        if w and not re.search(r"[\s'\"\\]", w):
            out.append(w)
        else:
            out.append(shlex.quote(w))
    return " ".join(out)


def parse_args(prog: str, argv: List[str]) -> Spec:
    spec = Spec(prog=prog)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and len(argv) - i >= 2:
        sw = argv[i]
        if sw == "-V":  # Kaldi/SGE: export the environment; always the case here
            i += 1
            continue
        if sw.startswith("--") and "=" in sw:
            key, val = sw[2:].split("=", 1)
            i += 1
        else:
            key, val = sw.lstrip("-"), argv[i + 1]
            i += 2
        if not re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", key):
            raise UsageError(f"bad option {sw!r}")
        key = key.replace("-", "_")
        key = ALIASES.get(key, key)
        spec.options[key] = val
    rest = argv[i:]
    if rest and (m := ARRAY_RE.match(rest[0]) or SINGLE_RE.match(rest[0])):
        spec.jobname = m.group(1)
        spec.start = int(m.group(2))
        spec.end = int(m.group(3)) if m.re is ARRAY_RE else spec.start
        if spec.end < spec.start:
            raise UsageError(f"invalid job range {rest[0]}")
        rest = rest[1:]
    elif rest and re.match(r"^[A-Za-z_]\w*=.*:", rest[0]):
        raise UsageError(f"bad job range {rest[0]!r} (expected e.g. JOB=1:4)")
    if len(rest) < 2:
        raise UsageError("need a log file and a command")
    spec.log = rest[0]
    if spec.jobname is not None and spec.end > spec.start and spec.jobname not in spec.log:
        raise UsageError(f"the log file {spec.log} must contain {spec.jobname} for a job array")
    spec.command = join_command(rest[1:])
    if "max_jobs_run" in spec.options:
        v = spec.options["max_jobs_run"]
        if not v.isdigit() or int(v) < 1:
            raise UsageError(f"--max-jobs-run needs a positive integer, got {v!r}")
    return spec


def usage(prog: str) -> str:
    return (
        f"Usage: {prog} [options] [JOB=1:N] <log-file> <command...>\n"
        f" e.g.: {prog} --max-jobs-run 4 JOB=1:8 exp/x/log/step.JOB.log echo JOB\n"
        "Options: --max-jobs-run K, --mem M, --gpus N, --num-threads N, --time T, --partition P\n"
        "(the literal JOB in the log name and the command becomes the job index)"
    )


def now_str() -> str:
    return time.strftime("%a %b %d %H:%M:%S %Z %Y")


def tail(path: str, n: int = TAIL_LINES) -> List[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError as e:
        return [f"(cannot read {path}: {e.strerror})"]
    return data.decode("utf-8", "replace").splitlines()[-n:]


def report_failures(spec: Spec, failed: List[Tuple[int, str]], extra: str = "") -> None:
    """failed: (job id, reason) sorted by id."""
    n = len(spec.ids)
    first_id, reason = failed[0]
    first_log = spec.subst(spec.log, first_id)
    if n == 1:
        msg = f"{spec.prog}: job failed ({reason}), log is in {first_log}"
    else:
        ids = " ".join(str(j) for j, _ in failed[:20]) + (" ..." if len(failed) > 20 else "")
        msg = (f"{spec.prog}: {len(failed)} / {n} failed (jobs {ids}), first failing log "
               f"({reason}) is {first_log}")
    lines = [msg]
    if extra:
        lines.append(extra)
    lines.append(f"{spec.prog}: ----- last {TAIL_LINES} lines of {first_log} -----")
    lines.extend(tail(first_log))
    lines.append(f"{spec.prog}: ----- end of {first_log} -----")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def describe_code(code: int) -> str:
    if code > 128 and code - 128 < 65:
        try:
            return f"exit code {code}, {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"exit code {code}"


def make_log_dirs(spec: Spec) -> None:
    for j in spec.ids:
        d = os.path.dirname(spec.subst(spec.log, j))
        if d:
            os.makedirs(d, exist_ok=True)


# ------------------------------------------------------------------------------- keeping jobs in reach
# A job must not outlive its runner, however the runner (or the recipe above it) dies: a SIGKILL of
# the recipe's process group, an OOM kill, a closed terminal. Each job therefore runs under a
# *keeper* (this file, mode "_keep"): the leader of a session of its own, with a parent-death signal,
# so that it hears of the runner's death, and a child subreaper, so that the job's orphaned
# grandchildren (a daemonised or setsid'ed process) become its children instead of init's. When the
# runner dies, or it is told to stop, or the job's command ends, the keeper ends everything that is
# left of the job: its session and its descendants, SIGTERM first, SIGKILL after KILL_GRACE seconds.
# The runner itself has a parent-death signal too: killing only the recipe's bash reaches it.
class _Interrupted(Exception):
    def __init__(self, signum: int):
        self.signum = signum


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KILL_GRACE = 3.0
SCANCEL_TIMEOUT = 30
_libc = None


def _prctl(option: int, value: int) -> None:
    """prctl(2) through ctypes (Linux); silently nothing elsewhere (no parent-death signal there)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def die_with_parent(sig: int = signal.SIGTERM, parent: Optional[int] = None) -> None:
    """Ask for ``sig`` when the parent dies; if it is already gone (re-parented before the request
    took effect), raise it now."""
    _prctl(PR_SET_PDEATHSIG, sig)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def _proc_table() -> Dict[int, Tuple[int, int, int, str]]:
    """pid -> (ppid, pgid, sid, state) of every process, from /proc."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]), fields[0])
    return table


def job_processes(leader: int) -> List[int]:
    """The live processes of the job whose keeper is ``leader``: its session (and process group) and
    every descendant of the leader, wherever it moved; the leader itself excluded."""
    table = _proc_table()
    children: Dict[int, List[int]] = {}
    for pid, (ppid, _, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = {pid for pid, (_, pgid, sid, _) in table.items() if sid == leader or pgid == leader}
    stack = [leader]
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in found:
                found.add(c)
                stack.append(c)
    found.discard(leader)
    return sorted(p for p in found if table.get(p, (0, 0, 0, "Z"))[3] not in ("Z", "X"))


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_job_tree(leader: int, grace: float = KILL_GRACE) -> int:
    """SIGTERM every process of the job, SIGKILL what is left after ``grace`` seconds; returns how
    many processes there were."""
    procs = job_processes(leader)
    for pid in procs:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + grace
    left = procs
    while left and time.time() < deadline:
        _reap()
        time.sleep(0.02)
        left = job_processes(leader)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while job_processes(leader) and time.time() < deadline + 5:
        _reap()
        time.sleep(0.02)
    _reap()
    return len(procs)


def keep(argv: List[str]) -> int:
    """Mode "_keep": run ``argv`` as a job (see above) and return its exit status (128+N if a signal
    N killed it, as bash reports it)."""
    runner = os.environ.pop("JOBRUN_RUNNER_PID", None)
    if runner is not None and os.getppid() != int(runner):
        return 128 + signal.SIGTERM  # the runner died before we started
    _prctl(PR_SET_CHILD_SUBREAPER, 1)

    def on_signal(signum, _frame):
        raise _Interrupted(signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    me = os.getpid()
    try:
        proc = subprocess.Popen(argv, preexec_fn=lambda: _prctl(PR_SET_PDEATHSIG, signal.SIGKILL))
        while True:
            pid, status = os.wait()
            if pid == proc.pid:
                code = os.waitstatus_to_exitcode(status)
                break
        code = 128 - code if code < 0 else code
        signum = None
    except _Interrupted as e:
        code, signum = 128 + e.signum, e.signum
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    left = end_job_tree(me, grace=KILL_GRACE if signum else 0.5)
    if signum and runner is not None and os.getppid() != int(runner):  # it cannot write this itself
        sys.stdout.write(f"# Killed with its runner (pid {runner}, gone: {signal.Signals(signum).name}) "
                         f"at {now_str()}\n")
        sys.stdout.flush()
    if left and signum is None:
        sys.stderr.write(f"# {left} process(es) the job left running were ended with it\n")
    return code


def _job_preexec(sig: int = signal.SIGTERM):
    """preexec_fn of a keeper: the parent-death signal (the session is start_new_session's)."""
    def f():
        _prctl(PR_SET_PDEATHSIG, sig)
    return f


# ---------------------------------------------------------------------------------------- local
def run_local(spec: Spec) -> int:
    if "max_jobs_run" in spec.options:
        max_jobs = int(spec.options["max_jobs_run"])
    else:
        try:
            max_jobs = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            max_jobs = os.cpu_count() or 1
    make_log_dirs(spec)
    pending = deque(spec.ids)
    running: Dict[int, Tuple[int, subprocess.Popen, str, float]] = {}  # pid -> (id, proc, log, t0)
    codes: Dict[int, int] = {}

    def on_signal(signum, _frame):
        raise _Interrupted(signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        while pending or running:
            while pending and len(running) < max_jobs:
                jobid = pending.popleft()
                log = spec.subst(spec.log, jobid)
                cmd = spec.subst(spec.command, jobid)
                with open(log, "w") as f:
                    f.write(f"# {cmd}\n# Started at {now_str()}\n#\n")
                    f.flush()
                    t0 = time.time()
                    proc = subprocess.Popen(
                        [sys.executable, os.path.abspath(__file__), "_keep", "bash", "-o", "pipefail",
                         "-c", cmd], stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                        start_new_session=True, preexec_fn=_job_preexec(),
                        env=dict(os.environ, JOBRUN_RUNNER_PID=str(os.getpid())))
                running[proc.pid] = (jobid, proc, log, t0)
            pid, status = os.wait()
            if pid not in running:
                continue
            jobid, proc, log, t0 = running.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if code < 0:  # killed by a signal: report it as bash would
                code = 128 - code
            proc.returncode = code
            codes[jobid] = code
            elapsed = int(round(time.time() - t0))
            with open(log, "a") as f:
                f.write(f"# Accounting: time={elapsed} threads=1\n"
                        f"# Ended (code {code}) at {now_str()}, elapsed time {elapsed} seconds\n")
    except _Interrupted as e:
        for jobid, proc, log, _ in running.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for jobid, proc, log, _ in running.values():
            proc.wait()
            with open(log, "a") as f:
                f.write(f"# Killed by {spec.prog} ({signal.Signals(e.signum).name}) at {now_str()}\n")
        sys.stderr.write(f"{spec.prog}: interrupted ({signal.Signals(e.signum).name}); killed "
                         f"{len(running)} running job(s), {len(pending)} not started\n")
        return 128 + e.signum
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    failed = [(j, describe_code(c)) for j, c in sorted(codes.items()) if c != 0]
    if failed:
        report_failures(spec, failed)
        return 1
    return 0


# ---------------------------------------------------------------------------------------- slurm
SLURM_RENAME = {"gpu": "gpus", "num_threads": "cpus-per-task"}
SLURM_IGNORE = {"max_jobs_run", "sync", "config"}

TASK_SCRIPT = r"""#!/bin/bash
# Generated by {prog} at {date}; runs one task of:
# {command_comment}
cd {cwd} || exit 1
cmd={command}
log={log}
{subst}
mkdir -p "$(dirname "$log")"
{{
  printf '# %s\n' "$cmd"
  echo "# Running on $(hostname) (slurm job ${{SLURM_JOB_ID:-?}}${{SLURM_ARRAY_TASK_ID:+, task $SLURM_ARRAY_TASK_ID}})"
  echo "# Started at $(date)"
  echo "#"
}} > "$log"
t0=$(date +%s)
bash -o pipefail -c "$cmd" </dev/null >>"$log" 2>&1
ret=$?
t1=$(date +%s)
echo "# Accounting: time=$((t1 - t0)) threads=${{SLURM_CPUS_PER_TASK:-1}}" >>"$log"
echo "# Ended (code $ret) at $(date), elapsed time $((t1 - t0)) seconds" >>"$log"
exit $ret
"""


def slurm_paths(spec: Spec) -> Tuple[str, str]:
    """(q dir, base name) for the generated files, next to the logs: exp/x/log/step.JOB.log ->
    exp/x/log/q, step."""
    logdir = os.path.dirname(spec.log) or "."
    if spec.jobname is not None and spec.jobname in logdir:  # e.g. exp/x/JOB/log: use the part above
        parts = logdir.split(os.sep)
        k = next(i for i, p in enumerate(parts) if spec.jobname in p)
        logdir = os.sep.join(parts[:k]) or "."
    base = os.path.basename(spec.log)
    if base.endswith(".log"):
        base = base[: -len(".log")]
    if spec.jobname is not None:
        base = base.replace("." + spec.jobname, "").replace(spec.jobname, "")
    base = re.sub(r"[^A-Za-z0-9_.+-]", "_", base) or "job"
    return os.path.join(logdir, "q"), base


def sbatch_options(spec: Spec) -> List[str]:
    out = []
    for key, val in spec.options.items():
        if key in SLURM_IGNORE:
            continue
        if key == "gpu" and val.strip() in ("0", ""):
            continue
        name = SLURM_RENAME.get(key, key.replace("_", "-"))
        out.append(f"--{name}={val}")
    return out


def run_slurm(spec: Spec) -> int:
    make_log_dirs(spec)
    qdir, base = slurm_paths(spec)
    os.makedirs(qdir, exist_ok=True)
    is_array = spec.jobname is not None
    if is_array:
        subst = (f'cmd=${{cmd//{spec.jobname}/$SLURM_ARRAY_TASK_ID}}\n'
                 f'log=${{log//{spec.jobname}/$SLURM_ARRAY_TASK_ID}}')
    else:
        subst = ""
    qdir = os.path.abspath(qdir)
    script = os.path.join(qdir, base + ".sh")
    with open(script, "w") as f:
        f.write(TASK_SCRIPT.format(
            prog=spec.prog, date=now_str(), command_comment=spec.command.replace("\n", " "),
            cwd=shlex.quote(os.getcwd()), command=shlex.quote(spec.command),
            log=shlex.quote(os.path.abspath(spec.log)), subst=subst))
    os.chmod(script, 0o755)
    # Remove old logs so that a task that never ran cannot pass for one that succeeded.
    for j in spec.ids:
        try:
            os.remove(spec.subst(spec.log, j))
        except FileNotFoundError:
            pass
    args = ["sbatch", "--wait", "--parsable", f"--job-name={base}", "--export=ALL"]
    if is_array:
        rng = f"{spec.start}-{spec.end}"
        if "max_jobs_run" in spec.options:
            rng += "%" + spec.options["max_jobs_run"]
        args.append(f"--array={rng}")
        args.append(f"--output={os.path.join(qdir, base)}.%a.out")
    else:
        args.append(f"--output={os.path.join(qdir, base)}.out")
    args += sbatch_options(spec)
    args.append(script)
    sbatch_out = os.path.join(qdir, base + ".sbatch.out")

    def on_signal(signum, _frame):
        raise _Interrupted(signum)

    if shutil.which("sbatch") is None:
        sys.stderr.write(f"{spec.prog}: sbatch not found on PATH (is this a Slurm "
                         "cluster? use utils/run_local.sh otherwise)\n")
        return 1
    with open(sbatch_out, "w") as f:
        f.write("# " + " ".join(shlex.quote(a) for a in args) + "\n")
    # sbatch --wait runs under a keeper (mode "_sbatch") that cancels the job when it is told to stop
    # or when this runner dies, even by SIGKILL (its parent-death signal).
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "_sbatch", sbatch_out] + args,
        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_job_preexec(),
        env=dict(os.environ, JOBRUN_RUNNER_PID=str(os.getpid())))
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        rc = proc.wait()
    except _Interrupted as e:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        jobid = _slurm_job_id(sbatch_out)
        sys.stderr.write(f"{spec.prog}: interrupted ({signal.Signals(e.signum).name}); "
                         f"cancelled slurm job {jobid or '(unknown id: not submitted)'}\n")
        return 128 + e.signum
    finally:
        for s, h in old.items():
            signal.signal(s, h)

    failed = []
    for j in spec.ids:
        log = spec.subst(spec.log, j)
        try:
            with open(log, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            failed.append((j, "task never started: no log"))
            continue
        m = list(ENDED_RE.finditer(text))
        if not m:
            failed.append((j, "no exit status in the log: killed by Slurm (time or memory limit?)"))
        elif int(m[-1].group(1)) != 0:
            failed.append((j, describe_code(int(m[-1].group(1)))))
    if failed:
        extra = (f"{spec.prog}: job script {script}; sbatch exit status {rc}, its output in "
                 f"{sbatch_out}; Slurm's own output in {os.path.join(qdir, base)}"
                 f"{'.<task>' if is_array else ''}.out")
        report_failures(spec, failed, extra)
        return 1
    if rc != 0:
        sys.stderr.write(f"{spec.prog}: sbatch failed (exit status {rc}) although every task log "
                         f"ends with code 0; sbatch output ({sbatch_out}):\n")
        sys.stderr.write("\n".join(tail(sbatch_out)) + "\n")
        return 1
    return 0


def keep_sbatch(out_path: str, args: List[str]) -> int:
    """Mode "_sbatch": run ``sbatch --wait ...`` (output appended to ``out_path``) and return its exit
    status; told to stop (or orphaned: the parent-death signal), cancel the job it submitted."""
    runner = os.environ.pop("JOBRUN_RUNNER_PID", None)
    if runner is not None and os.getppid() != int(runner):
        return 128 + signal.SIGTERM

    def on_signal(signum, _frame):
        raise _Interrupted(signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    # line-buffered, so that the job id reaches the file at submission and not when sbatch exits
    cmd = (["stdbuf", "-oL"] if shutil.which("stdbuf") else []) + args
    proc = None
    try:
        with open(out_path, "a") as f:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: _prctl(PR_SET_PDEATHSIG, signal.SIGTERM))
            return proc.wait()
    except _Interrupted as e:
        signum = e.signum
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    jobid = _slurm_job_id(out_path)
    if jobid:
        try:  # bounded: scancel retries for minutes when the controller is down
            r = subprocess.run(["scancel", jobid], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, check=False, timeout=SCANCEL_TIMEOUT)
            status = f"scancel exit status {r.returncode} {r.stdout.strip()}"
        except subprocess.TimeoutExpired:
            status = f"scancel gave no answer in {SCANCEL_TIMEOUT} s: cancel it yourself (scancel {jobid})"
        with open(out_path, "a") as f:
            f.write(f"# cancelled job {jobid} ({signal.Signals(signum).name}): {status}\n")
        if runner is not None and os.getppid() != int(runner):  # the runner, dead, cannot say it
            sys.stderr.write(f"jobrun: the runner died: cancelled slurm job {jobid}: {status}\n")
    return 128 + signum


def _slurm_job_id(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            for line in f:
                m = re.match(r"^(?:Submitted batch job )?(\d+)", line.strip())
                if m:
                    return m.group(1)
    except OSError:
        pass
    return None


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_keep":
        return keep(argv[1:])
    if argv and argv[0] == "_sbatch":
        return keep_sbatch(argv[1], argv[2:])
    if os.environ.get("JOBRUN_PARENT", "").isdigit():  # set by run_local.sh / run_slurm.sh: the recipe
        die_with_parent(signal.SIGTERM, int(os.environ.pop("JOBRUN_PARENT")))
    if not argv or argv[0] not in ("local", "slurm"):
        sys.stderr.write("usage: jobrun.py {local|slurm} [options] [JOB=1:N] <log> <command...>\n")
        return 1
    backend, argv = argv[0], argv[1:]
    prog = os.environ.get("JOBRUN_PROG") or f"run_{backend}.sh"
    if not argv or argv[0] in ("-h", "--help"):
        sys.stderr.write(usage(prog) + "\n")
        return 0 if argv else 1
    try:
        spec = parse_args(prog, argv)
    except UsageError as e:
        sys.stderr.write(f"{prog}: {e}\n{usage(prog)}\n")
        return 1
    return run_local(spec) if backend == "local" else run_slurm(spec)


if __name__ == "__main__":
    sys.exit(main())
