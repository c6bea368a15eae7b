"""Fixtures of the asrkit.infer tests: a toy recipe (asrkit.testing.recipe) and its systems exported."""
from __future__ import annotations

from pathlib import Path

import pytest

from asrkit.testing.recipe import write_toy_recipe


@pytest.fixture(scope="session")
def toy_recipe(tmp_path_factory) -> Path:
    return write_toy_recipe(tmp_path_factory.mktemp("toy_recipe"))


@pytest.fixture(scope="session")
def toy_models(toy_recipe, tmp_path_factory):
    """The toy student and teacher exported: {"student": dir, "teacher": dir}."""
    from asrkit.infer.model_dir import export_model

    out = tmp_path_factory.mktemp("toy_models")
    return {s: export_model(toy_recipe / "exp", s, out / s) for s in ("student", "teacher")}
