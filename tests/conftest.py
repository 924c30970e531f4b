"""Fixtures every test directory shares; the plain helpers they use are in ``tests/testkit.py``.

* ``specml_home``: an empty specml home for one test, set as ``SPECML_HOME`` (``SPECML_WORKSPACE`` unset);
* ``pima_home``: a specml home whose default workspace holds the bundled Pima table ``pima``, one per
  test module (not set as ``SPECML_HOME``: pass it to the runners);
* ``cli``: ``cli(*args, home=..., cwd=..., input=...)`` runs ``specml ARGS`` in this process
  (:func:`testkit.invoke`);
* ``cli_runner``: a typer ``CliRunner`` and the app, for tests that drive click directly.

Randomness: every test starts with Python's, NumPy's and (when imported) torch's global generators
seeded from ``SPECML_TEST_SEED`` (default fixed) and its node id; Hypothesis uses the same seed. The
seed is printed in the header and with every failure: ``SPECML_TEST_SEED=<n> pytest ...`` replays it.

Speed tiers: tests marked ``slow`` (a subprocess training, a server, a long sweep) are left out of
``pytest -m "not slow"`` (``make test-fast``); ``make test`` runs everything.

Byte-code: the suite writes ``__pycache__`` even where ``PYTHONDONTWRITEBYTECODE`` is set (it is on the
development machines). Without it every run, every xdist worker and every ``specml`` subprocess compiles
specml's sources and re-does pytest's assertion rewriting of each test module again (about 10 s of a
fast-tier run here). The caches are ignored by git and never change what a test sees.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

sys.dont_write_bytecode = False  # this process: test modules imported from here on
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the subprocesses tests start

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # ``from testkit import ...`` in every test module
import testkit  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "hypothesis_seed", None) is None:  # Hypothesis draws from the same seed
        config.option.hypothesis_seed = str(testkit.SEED)


def pytest_report_header(config: pytest.Config) -> str:
    return f"SPECML_TEST_SEED={testkit.SEED} (each test's random, numpy and torch seeds derive from it)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    if report.failed:
        report.sections.append(("random seed", f"SPECML_TEST_SEED={testkit.SEED} replays this test "
                                               f"(its global RNGs were seeded with {testkit.test_seed(item.nodeid)})"))


@pytest.fixture(autouse=True)
def _seeded_global_rngs(request: pytest.FixtureRequest) -> None:
    """Seed the global generators a test may draw from, so that no test depends on the ones before it."""
    seed = testkit.test_seed(request.node.nodeid)
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")  # not imported yet: it starts from its fixed default seed
    if torch is not None:
        torch.manual_seed(seed)


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
