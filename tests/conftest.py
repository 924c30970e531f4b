"""Fixtures every test directory shares; the plain helpers they use are in ``tests/testkit.py``.

* ``specml_home``: an empty specml home for one test, set as ``SPECML_HOME`` (``SPECML_WORKSPACE`` unset);
* ``pima_home``: a specml home whose default workspace holds the bundled Pima table ``pima``, one per
  test module (load nothing else into it);
* ``cli``: ``cli(*args, home=..., cwd=..., input=...)`` runs ``specml ARGS`` in this process
  (:func:`testkit.invoke`);
* ``cli_runner``: a typer ``CliRunner`` and the app, for tests that drive click directly.

Speed tiers: tests marked ``slow`` (a subprocess training, a server, a long sweep) are left out of
``pytest -m "not slow"`` (``make test-fast``); ``make test`` runs everything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ``from testkit import ...`` in every test module
import testkit  # noqa: E402


@pytest.fixture
def specml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty specml home, ``SPECML_HOME`` for the test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SPECML_HOME", str(home))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    return home


@pytest.fixture(scope="module")
def pima_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A specml home (not set as ``SPECML_HOME``) whose workspace holds table ``pima``; shared by a module."""
    home = tmp_path_factory.mktemp("pima_home")
    testkit.load_pima(home)
    return home


@pytest.fixture
def cli():
    """``cli(*args, home=None, cwd=None, env=None, input=None)``: ``specml ARGS`` run in this process."""
    return testkit.invoke


@pytest.fixture
def cli_runner():
    """(typer ``CliRunner``, the ``specml`` app)."""
    from typer.testing import CliRunner

    from specml.cli.app import app

    return CliRunner(), app
