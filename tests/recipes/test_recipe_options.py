"""Options every recipe documents are accepted by every recipe's run.sh (parsing only: no stage runs)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXTRA = {"TEMPLATE": ["--lexicon-type", "graphemic"]}


@pytest.mark.parametrize("recipe", ["TEMPLATE", "librispeech", "speechocean762", "synth"])
def test_on_error_and_force_accepted_and_documented(recipe):
    s5 = REPO / "egs" / recipe / "s5"
    r = subprocess.run(["./run.sh", "--on-error", "skip", "--force", "true", "--stage", "99", "--stop-stage", "99",
                        *EXTRA.get(recipe, [])], cwd=s5, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Done: stages 99..99" in r.stderr
    help_text = subprocess.run(["./run.sh", "--help"], cwd=s5, capture_output=True, text=True, timeout=60).stderr
    assert "--on-error fail|skip" in help_text and "--force true|false" in help_text
    r = subprocess.run(["./run.sh", "--on-error", "sometimes", "--stage", "99", "--stop-stage", "99",
                        *EXTRA.get(recipe, [])], cwd=s5, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--on-error is fail or skip" in r.stderr


@pytest.mark.parametrize("recipe", ["TEMPLATE", "librispeech", "speechocean762", "synth"])
def test_speed_perturb_documented_and_a_bad_factor_refused_at_start(recipe):
    s5 = REPO / "egs" / recipe / "s5"
    help_text = subprocess.run(["./run.sh", "--help"], cwd=s5, capture_output=True, text=True, timeout=60).stderr
    assert '--speed-perturb "F1 F2"' in help_text
    for bad, why in (("0.9 -1", "factor -1 must be a number > 0"), ("0.9 fast", "'fast' is not a number")):
        # stage 0 would run first with --stage 0: the check comes before any stage
        r = subprocess.run(["./run.sh", "--speed-perturb", bad, "--stage", "99", "--stop-stage", "99",
                            *EXTRA.get(recipe, [])], cwd=s5, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and f"--speed-perturb: {why}" in r.stderr, r.stderr
        assert "Done: stages" not in r.stderr
    r = subprocess.run(["./run.sh", "--speed-perturb", "0.9 1.1", "--stage", "99", "--stop-stage", "99",
                        *EXTRA.get(recipe, [])], cwd=s5, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
