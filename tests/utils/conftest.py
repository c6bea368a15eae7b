"""A real one-node Slurm cluster on localhost for the backend tests (utils/run_slurm.sh).

``slurm_cluster`` starts munged, slurmctld and slurmd (Debian's munge and slurm-wlm, installed by
``ASRKIT_SLURM=1 tools/install.sh``, which CI=true implies) in a temporary folder: their own munge key
and socket, free TCP ports, state and spool folders, logs, a slurm.conf for this host with its real CPU
count and memory, and one fake GPU (a gres backed by /dev/null) so that --gpus is scheduled. It yields
the environment (SLURM_CONF) to run sbatch/squeue/scancel with, and stops the daemons afterwards.
Where the daemons cannot start, the tests are skipped with the reason (their logs' tail); under CI=true
they fail instead: CI must test the backend for real.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from asrkit.testing.processes import process_alive

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs a real Slurm: {reason}")
    pytest.skip(f"no local Slurm: {reason}")


def _free_ports(n: int):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


def _tail(path: Path, n: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
    if missing:
        _unavailable(f"{' '.join(missing)} not installed (ASRKIT_SLURM=1 ./tools/install.sh installs munge and "
                     "slurm-wlm)")
    d = Path(tmp_path_factory.mktemp("slurm"))
    d.chmod(0o755)  # munged wants its socket's folder reachable by all
    for sub in ("state", "spool", "log"):
        (d / sub).mkdir()
    key = d / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o400)
    sock = d / "munge.sock"
    host = socket.gethostname().split(".")[0]
    user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    ctld_port, d_port = _free_ports(2)
    conf = d / "slurm.conf"
    conf.write_text(f"""ClusterName=asrkittest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
GresTypes=gpu
KillWait=2
MinJobAge=600
DefMemPerCPU=256
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={int(_mem_mb() * 0.8)} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    (d / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null Count=1\n")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    sbin = lambda name: shutil.which(name) or f"/usr/sbin/{name}"  # noqa: E731
    started = []
    try:
        r = subprocess.run([sbin("munged"), "--force", f"--socket={sock}", f"--key-file={key}",
                            f"--log-file={d}/log/munged.log", f"--pid-file={d}/munged.pid",
                            f"--seed-file={d}/munged.seed"], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            _unavailable(f"munged failed: {r.stderr.strip() or _tail(d / 'log/munged.log')}")
        started.append(d / "munged.pid")
        for cmd, pid, log in (([sbin("slurmctld"), "-c", "-f", str(conf)], "slurmctld.pid", "slurmctld.log"),
                              ([sbin("slurmd"), "-f", str(conf), "-N", host], "slurmd.pid", "slurmd.log")):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
            if r.returncode != 0:
                _unavailable(f"{cmd[0]} failed ({r.returncode}): {r.stderr.strip()} {_tail(d / 'log' / log)}")
            started.append(d / pid)
        deadline = time.time() + 60
        state = ""
        while time.time() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            _unavailable(f"the node did not come up (state {state!r}): {_tail(d / 'log/slurmctld.log')}\n"
                         f"{_tail(d / 'log/slurmd.log')}")
        yield env
    finally:
        if len(started) == 3:  # no job may outlive the cluster (a slurmstepd would go on alone)
            subprocess.run(["scancel", "--user", user], env=env, capture_output=True, timeout=30)
            deadline = time.time() + 20
            while time.time() < deadline and subprocess.run(["squeue", "-h"], env=env, capture_output=True,
                                                            text=True, timeout=30).stdout.strip():
                time.sleep(0.3)
        for pid_file in reversed(started):
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, 15)
                for _ in range(100):
                    if not process_alive(pid):
                        break
                    time.sleep(0.05)
                else:
                    os.kill(pid, 9)
            except (OSError, ValueError):
                pass
