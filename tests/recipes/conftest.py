"""What the recipe tests share: running a recipe's run.sh, copying a recipe out of the checkout, and
reading its outputs. Test modules run under ``--import-mode=importlib`` and cannot import each other or
this file, so these come as the session fixture ``recipe_tools``."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class RecipeTools:
    repo = REPO
    # path.sh finds the repository through ASRKIT_ROOT when the recipe lives elsewhere.
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ASRKIT_ROOT": str(REPO)}

    def run(self, recipe: Path, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        """``./run.sh ARGS`` in ``recipe``; with ``check``, fails the test on a non-zero exit."""
        proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=timeout,
                              env=self.env)
        if check:
            assert proc.returncode == 0, f"run.sh {' '.join(args)} failed:\n{proc.stderr[-4000:]}"
        return proc

    @staticmethod
    def read_jsonl_gz(path: Path) -> list:
        with gzip.open(path, "rt") as f:
            return [json.loads(line) for line in f]

    @staticmethod
    def best_wer(decode_dir: Path) -> float:
        text = (decode_dir / "best_wer").read_text()
        assert text.startswith("%WER "), text
        return float(text.split()[1])

    @staticmethod
    def checked_wer(decode_dir: Path, text: Path) -> float:
        """The decode's best WER, after checking what a tiny recipe's WER cannot show: every utterance of
        the set (``text``, Kaldi's) has a hypothesis, and the errors and reference words in ``best_wer``
        are an edit distance recomputed here between ``text`` and ``hyp.txt``; ``best_wer`` is the lowest
        of the ``wer_*`` files."""
        import re

        import kaldialign

        line = (decode_dir / "best_wer").read_text()
        m = re.match(r"%WER (\d+\.\d+) \[ (\d+) / (\d+),", line)
        assert m, line
        refs = dict((ln.split(maxsplit=1) + [""])[:2] for ln in text.read_text().splitlines() if ln.strip())
        hyps = dict((ln.split(maxsplit=1) + [""])[:2] for ln in (decode_dir / "hyp.txt").read_text().splitlines()
                    if ln.strip())
        assert set(hyps) == set(refs), (decode_dir, sorted(set(refs) ^ set(hyps))[:5])
        errors = sum(kaldialign.edit_distance(r.split(), hyps[u].split())["total"] for u, r in refs.items())
        words = sum(len(r.split()) for r in refs.values())
        assert (int(m.group(2)), int(m.group(3))) == (errors, words), (decode_dir, line, errors, words)
        others = [float(f.read_text().split()[1]) for f in decode_dir.glob("wer_*")]
        assert others and float(m.group(1)) == min(others), (decode_dir, line, others)
        return float(m.group(1))

    def copy_recipe(self, src_dir: Path, dest_dir: Path) -> Path:
        """A copy of a recipe without its outputs (corpus/, data/, exp/, download/), its utils symlink
        pointed back at the repository's utils/."""
        dest_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src_dir, dest_dir, symlinks=True,
                        ignore=shutil.ignore_patterns("corpus", "data", "exp", "download"))
        (dest_dir / "utils").unlink()
        (dest_dir / "utils").symlink_to(self.repo / "utils")
        return dest_dir


@pytest.fixture(scope="session")
def recipe_tools() -> RecipeTools:
    return RecipeTools()
