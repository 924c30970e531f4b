"""What the tests share: the repository's paths, the environment a ``specml`` command runs in, and two
ways to run the command: in a subprocess (the installed console script, as a user runs it) or in this
process through typer's ``CliRunner`` (no interpreter start-up, no torch import: for error messages).

Both runners return an object read the same way (``returncode``, ``stdout``, ``stderr``), so a test
checks either with :func:`ok`, :func:`failed` and :func:`no_traceback`. The fixtures built on these
(a temporary specml home, a home holding Pima, a runner bound to a home) are in ``tests/conftest.py``;
this module is imported by name (``from testkit import ...``: pytest puts ``tests/`` on the path).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import traceback
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "specml"
SAMPLE_DATA = PACKAGE / "sample_data"
PIMA = SAMPLE_DATA / "pima_diabetes.csv"
EXAMPLES = ROOT / "examples"
PIMA_MLP = EXAMPLES / "pima_mlp"
FIXTURES = ROOT / "tests" / "fixtures"
#: the seed every test's randomness derives from: ``$SPECML_TEST_SEED`` or a fixed default (a failure prints it)
SEED = int(os.environ.get("SPECML_TEST_SEED", "20250611"))
#: the installed console script, next to this interpreter (the venv's ``bin/specml``)
SPECML = Path(sys.executable).parent / "specml"
#: the same command through the interpreter, for a wrapper or where the console script is not installed
SPECML_MODULE = [sys.executable, "-m", "specml"]


def test_seed(nodeid: str) -> int:
    """The seed of one test: :data:`SEED` mixed with its node id (stable across runs and test orders)."""
    return (SEED * 1_000_003 + zlib.crc32(nodeid.encode("utf-8"))) % 2**32


def specml_env(home: str | Path | None = None, **extra: str) -> dict[str, str]:
    """The environment a test runs ``specml`` in: this one, with plain output (no colour, 200 columns,
    UTF-8), ``CI=1`` (no TensorBoard launched), one thread per process (the suite runs on small machines),
    no ``SPECML_WORKSPACE`` leaking in, and ``SPECML_HOME`` when given."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONIOENCODING": "utf-8", "CI": "1",
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for key in ("FORCE_COLOR", "SPECML_WORKSPACE"):
        env.pop(key, None)
    if home is not None:
        env["SPECML_HOME"] = str(home)
    env.update(extra)
    return env


def specml(home: str | Path | None, *args: str | Path, cwd: str | Path | None = None, env: dict | None = None,
           timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the console script in a subprocess with ``SPECML_HOME=home`` (in ``cwd``, else ``home``, else the
    repository root)."""
    return subprocess.run([str(SPECML), *map(str, args)], cwd=cwd or home or ROOT, capture_output=True, text=True,
                          env=env or specml_env(home), timeout=timeout, input=input, check=False)


@dataclass
class Ran:
    """A command run in process, read like a ``CompletedProcess``; ``exception`` is what escaped the CLI
    (a traceback a user would have seen), None when it exited normally."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None = None
    traceback: str = ""


def invoke(*args: str | Path, home: str | Path | None = None, cwd: str | Path | None = None,
           env: dict[str, str | None] | None = None, input: str | None = None) -> Ran:
    """Run ``specml ARGS`` in this process (typer's ``CliRunner``), with the environment of :func:`specml_env`
    for the duration of the call, in ``cwd`` (else ``home``, else the repository root)."""
    from typer.testing import CliRunner

    from specml.cli.app import app

    environment: dict[str, str | None] = {"NO_COLOR": "1", "COLUMNS": "200", "CI": "1", "FORCE_COLOR": None,
                                          "SPECML_WORKSPACE": None}
    if home is not None:
        environment["SPECML_HOME"] = str(home)
    environment.update(env or {})
    argv = [str(a) for a in args]
    with contextlib.chdir(cwd or home or ROOT):
        result = CliRunner().invoke(app, argv, env=environment, input=input)
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    trace = "".join(traceback.format_exception(error)) if error is not None else ""
    return Ran(argv, result.exit_code, result.stdout, result.stderr, error, trace)


def run_as(how: str, home: str | Path | None, *args: str | Path, cwd: str | Path | None = None,
           env: dict[str, str | None] | None = None, input: str | None = None) -> subprocess.CompletedProcess | Ran:
    """``specml ARGS`` run ``how``: ``"in_process"`` (:func:`invoke`) or ``"console_script"`` (:func:`specml`);
    ``env``: variables to set for it (None: unset)."""
    if how == "in_process":
        return invoke(*args, home=home, cwd=cwd, env=env, input=input)
    full = specml_env(home)
    for key, value in (env or {}).items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    return specml(home, *args, cwd=cwd, env=full, input=input)


#: parametrize a test over both ways to run the command: in process (fast tier), the console script (slow)
BOTH_WAYS = pytest.mark.parametrize("how", ["in_process", pytest.param("console_script", marks=pytest.mark.slow)])


def no_traceback(result: subprocess.CompletedProcess | Ran) -> None:
    """No Python traceback reached the user (nor, in process, escaped the CLI)."""
    both = result.stdout + result.stderr
    assert getattr(result, "exception", None) is None, f"{both}\n{result.traceback}"
    assert "Traceback" not in both, both
    assert not re.search(r"^\w+(Error|Exception): ", both, re.M), both


def ok(result: subprocess.CompletedProcess | Ran) -> subprocess.CompletedProcess | Ran:
    """The command succeeded (exit 0, no traceback); the result."""
    assert result.returncode == 0, result.stdout + result.stderr + getattr(result, "traceback", "")
    no_traceback(result)
    return result


def failed(result: subprocess.CompletedProcess | Ran, code: int = 1, prefix: str = "error") -> str:
    """The command failed the way a user mistake should: exit ``code``, a message on stderr starting with
    ``prefix``, no traceback; the message."""
    assert result.returncode == code, result.stdout + result.stderr + getattr(result, "traceback", "")
    no_traceback(result)
    assert result.stderr.startswith(prefix), result.stderr
    return result.stderr


def load_pima(home: str | Path, tables: Sequence[str] = ("pima",)) -> None:
    """Load the bundled Pima CSV into ``home``'s default workspace, in this process (faster than the CLI)."""
    from specml.data.workspace import Workspace

    with Workspace(Path(home) / "workspace.duckdb") as ws:
        for table in tables:
            ws.load(PIMA, table)


def model_from(spec, **kwargs):
    """``specml.graph.build_model`` of a spec given as a ModelSpec, a dict or a file (read without the deep
    checks, as the builder's own tests want to see the builder's errors)."""
    from specml.graph import build_model
    from specml.spec import load_model_spec
    from specml.spec.model import ModelSpec

    return build_model(spec if isinstance(spec, ModelSpec) else load_model_spec(spec, check=False), **kwargs)
