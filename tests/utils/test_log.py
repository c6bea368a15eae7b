"""utils/log.sh: `log` prints a time stamp and the caller's file:line to stderr."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_log_prints_time_file_and_line(tmp_path):
    script = tmp_path / "stage_script.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "set -euo pipefail\n"
        f'. "{REPO}/utils/log.sh"\n'
        'log "Stage 1: hello" world\n'
        "f() {\n"
        '  log "inside f"\n'
        "}\n"
        "f\n"
        "echo on-stdout\n")
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "on-stdout\n"  # log writes to stderr only
    lines = r.stderr.splitlines()
    ts = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"
    assert re.fullmatch(ts + r" \(stage_script\.sh:4\) Stage 1: hello world", lines[0]), lines
    assert re.fullmatch(ts + r" \(stage_script\.sh:6\) inside f", lines[1]), lines


def test_log_from_a_sourced_file_names_that_file(tmp_path):
    (tmp_path / "lib.sh").write_text("\n\nlog from-lib\n")
    (tmp_path / "main.sh").write_text(f'. "{REPO}/utils/log.sh"\n. ./lib.sh\n')
    r = subprocess.run(["bash", "main.sh"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.rstrip().endswith("(lib.sh:3) from-lib")
