"""Seed 001 §6: ``/ml train --model diabetes --trainer diabetes_fast --data train_data --target outcome``
(and ``specml train --model N --trainer T``) train into the registered model's name when --name is not given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit import no_traceback, ok

ROOT = Path(__file__).resolve().parents[2]
SPECML = Path(sys.executable).parent / "specml"
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
EXAMPLE = ROOT / "examples" / "pima_mlp"


def specml(home: Path, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPECML_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("SPECML_WORKSPACE", None)
    return subprocess.run([str(SPECML), *map(str, args)], cwd=home, capture_output=True, text=True, env=env,
                          input=stdin, timeout=300)


@pytest.mark.slow
def test_a_registered_models_name_is_the_default_name(tmp_path):
    home = tmp_path
    fast = home / "fast.yaml"
    fast.write_text((EXAMPLE / "trainer.yaml").read_text(encoding="utf-8").replace("epochs: 100", "epochs: 1"),
                    encoding="utf-8")
    ok(specml(home, "data", "load", PIMA, "--table", "train_data"))
    ok(specml(home, "create-model", "--name", "diabetes", "--spec", EXAMPLE / "model.yaml"))
    ok(specml(home, "create-trainer", "--name", "diabetes_fast", "--spec", fast, "--model", "diabetes"))

    shell = ok(specml(home, "shell", stdin="/ml train --model diabetes --trainer diabetes_fast --data train_data "
                                           "--target outcome\n"))
    assert "trained 'diabetes' (binary)" in shell.stdout, shell.stdout + shell.stderr
    assert (home / "models" / "diabetes" / "metadata.json").is_file()

    spec_files = specml(home, "train", "-m", EXAMPLE / "model.yaml", "-T", fast, "--table", "train_data")
    assert spec_files.returncode == 1
    no_traceback(spec_files)
    assert "--name NAME" in spec_files.stderr and "with --spec-name NAME, that name is the default" in spec_files.stderr
