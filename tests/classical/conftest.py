"""The classical tests' shared fixture: a workspace with Pima and scikit-learn's bundled tables."""

from __future__ import annotations

import pytest
from test_classical_helpers import load_tables

from specml.data.workspace import Workspace


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """(home, workspace) for one test module; the tables of ``load_tables``."""
    home = tmp_path_factory.mktemp("home")
    ws = Workspace(home / "ws.duckdb")
    load_tables(ws)
    yield home, ws
    ws.close()
