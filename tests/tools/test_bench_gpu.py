"""tools/bench/gpu.py: says 'no GPU' and exits 0 where there is none; its measurement runs on the CPU."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "tools" / "bench" / "gpu.py"


def run(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300)


def test_without_gpu_says_so():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no GPU:") and "nothing measured" in proc.stdout


def test_measurement_on_cpu_reports_mfu():
    proc = run("--device", "cpu", "--preset", "tiny", "--steps", "2", "--warmup", "1", "--peak-size", "128",
               "--peak-repeats", "2", "--batch", "2", "--chunk", "20", "--num-senones", "50")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| student") or line.startswith("| teacher")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[3].replace(",", "")) > 0  # scored frames/s
        assert cells[6].endswith("%") and float(cells[6][:-1]) > 0  # MFU
