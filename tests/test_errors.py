"""One error type: every user-facing error is a SpecmlError, keeps its old base, and imports without torch."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

from specml.errors import SpecmlError

#: (module, class, the base it had before SpecmlError, whether importing the module imports torch)
ERRORS = [
    ("specml.spec.errors", "SpecError", ValueError, False),
    ("specml.spec.estimator", "EstimatorTypeError", ValueError, False),
    ("specml.graph.layers", "ParamError", ValueError, True),
    ("specml.graph.allowlist", "NotAllowed", LookupError, True),
    ("specml.classical.errors", "ClassicalError", ValueError, False),
    ("specml.train.errors", "TrainingError", RuntimeError, False),
    ("specml.train.engine", "TrainingError", RuntimeError, True),
    ("specml.train.checkpoint", "CheckpointError", ValueError, False),
    ("specml.cli.shell", "LineError", ValueError, False),
    ("specml.data.errors", "DataError", ValueError, False),
    ("specml.data.workspace", "DataError", ValueError, False),
    ("specml.artifact", "ArtifactError", ValueError, False),
    ("specml.track.registry", "RegistryError", ValueError, False),
    ("specml.track.jobs", "JobError", ValueError, False),
    ("specml.compile.errors", "CompileError", ValueError, False),
    ("specml.compile.errors", "TargetNotFound", ValueError, False),
    ("specml.compile.errors", "AmbiguousTarget", ValueError, False),
]


@pytest.mark.parametrize("module, name, base, _torch", ERRORS, ids=[f"{m}.{n}" for m, n, _, _ in ERRORS])
def test_every_user_error_is_a_specml_error_and_keeps_its_base(module, name, base, _torch):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, SpecmlError), cls.__mro__
    assert issubclass(cls, base), f"{name} lost its base {base.__name__}: existing `except` clauses would miss it"


def test_moved_classes_are_the_same_objects_where_they_were():
    from specml.data.errors import DataError
    from specml.data.workspace import DataError as FromWorkspace
    from specml.train.engine import TrainingError as FromEngine
    from specml.train.errors import TrainingError

    assert FromWorkspace is DataError and FromEngine is TrainingError


def test_message_and_hint():
    plain = SpecmlError("table 'x' not found")
    assert str(plain) == "table 'x' not found" and plain.hint is None
    hinted = SpecmlError("table 'x' not found", hint="load it: specml data load FILE --table x")
    assert str(hinted) == "table 'x' not found\n  hint: load it: specml data load FILE --table x"
    assert hinted.hint == "load it: specml data load FILE --table x"
    from specml.data.errors import DataError

    assert str(DataError("no rows", "pick another table")) == "no rows\n  hint: pick another table"


def test_classes_that_keep_their_own_hint_do_not_say_it_twice():
    from specml.spec.errors import SpecError, SpecIssue
    from specml.spec.estimator import EstimatorTypeError

    err = EstimatorTypeError("unknown estimator 'Foo'", "did you mean 'Bar'?")
    assert str(err) == "unknown estimator 'Foo' (did you mean 'Bar'?)" and err.hint == "did you mean 'Bar'?"
    spec = SpecError([SpecIssue(("graph", 0, "type"), "unknown type", "did you mean 'x'?", "m.yaml", 4)])
    assert str(spec) == "m.yaml:4: graph[0].type: unknown type (did you mean 'x'?)"


def test_error_modules_import_without_torch_or_duckdb():
    modules = sorted({m for m, _, _, torch in ERRORS if not torch} - {"specml.data.workspace"})
    code = textwrap.dedent(f"""
        import importlib, json, sys
        for m in {modules!r}:
            importlib.import_module(m)
        print(json.dumps({{"torch": "torch" in sys.modules, "duckdb": "duckdb" in sys.modules}}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"torch": False, "duckdb": False}
