"""Process checks for the tests of job runners and daemons (Linux /proc)."""
from __future__ import annotations


def process_alive(pid: int) -> bool:
    """Running: it exists and is not a zombie (a process that forked away from us may linger as a zombie
    of init's after it died)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
