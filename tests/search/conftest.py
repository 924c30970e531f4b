"""Shared set-up of the search tests: a specml home with the Pima table split 80/20, tiny specs.

The home is made once per session (loading and splitting takes a few seconds); each test points
``SPECML_HOME`` at it and names its own models, studies and sweeps.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def pima_home(tmp_path_factory) -> Path:
    """A specml home whose workspace holds pima, pima_train (614 rows) and pima_test (154 rows)."""
    from specml.data.workspace import Workspace

    home = tmp_path_factory.mktemp("search-home")
    with Workspace(home / "workspace.duckdb") as ws:
        assert ws.load(PIMA, "pima") == 768
        ws.split("pima", test_size=0.2, stratify="outcome", seed=42)
    return home


@pytest.fixture
def home(pima_home, monkeypatch) -> Path:
    monkeypatch.setenv("SPECML_HOME", str(pima_home))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    return pima_home


@pytest.fixture
def specs(tmp_path) -> dict[str, Path]:
    """Copies of the tiny specs (model, trainer, space, estimator) in a folder of the test's own."""
    out = {}
    for name in ("model", "trainer", "space", "estimator", "estimator_space"):
        out[name] = Path(shutil.copy(FIXTURES / f"{name}.yaml", tmp_path / f"{name}.yaml"))
    return out
