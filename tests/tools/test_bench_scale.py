"""tools/bench/scale.py: the fitted exponents, the summary and the child's peak RSS (small, exact cases)."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("bench_scale", REPO / "tools" / "bench" / "scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fit_exponent(scale):
    xs = [1e3, 1e4, 1e5, 1e6]
    assert scale.fit_exponent(xs, [3 * x ** 0.5 for x in xs]) == pytest.approx(0.5)
    assert scale.fit_exponent(xs, [7.0] * 4) == pytest.approx(0.0)
    assert scale.fit_exponent([10], [1]) is None


def test_summary_skips_capped_rows_and_measures_above_import(scale):
    rows = [{"stage": "import", "cuts": n, "peak_rss_mb": 100.0, "wall_s": 10.0} for n in (10, 100, 1000)]
    rows += [{"stage": "s", "cuts": n, "peak_rss_mb": 100.0 + n / 10, "wall_s": 10.0 + n} for n in (10, 100, 1000)]
    rows += [{"stage": "s", "cuts": 10000, "peak_rss_mb": 5.0, "wall_s": 1.0, "capped": "time > 1 s"}]
    s = scale.summarise(rows)["s"]
    assert s["sizes"] == [10, 100, 1000] and s["rss_above_import_exponent"] == pytest.approx(1.0)
    assert s["time_above_import_exponent"] == pytest.approx(1.0) and s["rss_growth"] == pytest.approx(200 / 101)


def test_child_peak_rss_is_its_own(scale, tmp_path, monkeypatch):
    """A stage that allocates ~200 MB reports at least that; ``import`` of a small child reports less."""
    code = "import sys; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('{}')"
    monkeypatch.setattr(scale, "__file__", str(tmp_path / "fake.py"))
    (tmp_path / "fake.py").write_text(code)
    (tmp_path / "n5").mkdir()
    row = scale.run_stage("big", tmp_path / "n5", cap_s=120, max_rss_kb=4 * 2**20)
    assert row["cuts"] == 5 and row["capped"] is None and row["info"] == {} and row["peak_rss_mb"] >= 200
    row = scale.run_stage("big", tmp_path / "n5", cap_s=120, max_rss_kb=50 * 2**10)
    assert row["capped"].startswith("RSS >")
