"""The ``specml`` command: validate, describe, schema.

Most tests run the command in this process (typer's ``CliRunner``, :func:`testkit.invoke`) and read its
exit code, stdout and stderr as a user would. A few run the installed entry point (``<venv>/bin/specml``)
in a subprocess, end to end. Import-time checks (``--help`` and ``validate --no-deep`` do not import
torch) run in a fresh interpreter, where ``sys.modules`` tells what was imported.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from testkit import ROOT, SPECML, failed, invoke, model_from, no_traceback, ok, specml_env
from testkit import specml as specml_process

EXAMPLE_FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").glob("*/*.yaml"))
MODEL_FILES = [f for f in EXAMPLE_FILES if f.endswith("model.yaml")]
TRAINER_FILES = [f for f in EXAMPLE_FILES if f.endswith("trainer.yaml")]


def specml(*args: str | Path):
    """``specml ARGS`` in this process, in the repository root."""
    return invoke(*args, cwd=ROOT)


def python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, capture_output=True,
                          text=True, env=env or specml_env(), timeout=300)


def test_console_script_is_installed():
    assert SPECML.exists(), f"no console script at {SPECML}; is specml installed in this venv?"
    assert len(MODEL_FILES) >= 3 and len(TRAINER_FILES) >= 3, EXAMPLE_FILES


# ----------------------------------------------------------------------------------------------
# help, and what it imports


def test_help_lists_the_commands():
    result = specml_process(None, "--help")  # the installed console script, end to end
    assert result.returncode == 0, result.stderr
    for command in ("validate", "describe", "schema"):
        assert re.search(rf"^\W*{command}\s", result.stdout, re.M), result.stdout
    no_traceback(result)


def test_no_arguments_shows_help():
    result = specml()
    assert "validate" in result.stdout + result.stderr
    no_traceback(result)


@pytest.mark.parametrize("command", ["validate", "describe", "schema"])
def test_command_help(command):
    result = specml(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    no_traceback(result)


IN_PROCESS = """
    import sys, json
    from typer.testing import CliRunner
    from specml.cli.app import app
    for args in json.loads(sys.argv[1]):
        result = CliRunner().invoke(app, args)
        print(json.dumps({"args": args, "exit_code": result.exit_code, "output": result.output,
                          "exception": repr(result.exception) if result.exception and
                                       not isinstance(result.exception, SystemExit) else None,
                          "torch": "torch" in sys.modules,
                          "torch_modules": sorted(m for m in sys.modules
                                                  if m == "torch" or m.startswith("torch."))[:5]}))
"""


def invoke_in_fresh_interpreter(*commands: list[str]) -> list[dict]:
    """Run the commands one after the other in one new interpreter; what each did, and whether torch was
    imported by then (torch stays imported: a command that imports it fails the ones after it too)."""
    result = python(IN_PROCESS, json.dumps([list(c) for c in commands]))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.strip().splitlines()[-len(commands):]]


@pytest.fixture(scope="module")
def torch_free(tmp_path_factory) -> dict[tuple[str, ...], dict]:
    """``--help`` and ``validate --no-deep`` (every example, a broken file) in one fresh interpreter."""
    broken = write_broken(tmp_path_factory.mktemp("broken"), "unknown_key")[0]
    commands = [["--help"], *(["validate", "--no-deep", f] for f in EXAMPLE_FILES),
                ["validate", "--no-deep", str(broken)]]
    return {tuple(out["args"]): out for out in invoke_in_fresh_interpreter(*commands)} | {("broken",): broken}


def test_help_does_not_import_torch(torch_free):
    out = torch_free[("--help",)]
    assert out["exit_code"] == 0, out
    assert "validate" in out["output"]
    assert not out["torch"], f"--help imported torch: {out['torch_modules']}"


def test_console_script_help_does_not_import_torch():
    """The real entry point, with Python's import-time log (PYTHONPROFILEIMPORTTIME = -X importtime)."""
    result = specml_process(None, "--help", env=specml_env(PYTHONPROFILEIMPORTTIME="1"))
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "specml.cli.app" in imported, "the import-time log did not record the CLI module"
    torch_mods = [m for m in imported if m == "torch" or m.startswith("torch.")]
    assert not torch_mods, f"specml --help imported {torch_mods[:5]}"


@pytest.mark.parametrize("file", EXAMPLE_FILES)
def test_validate_no_deep_does_not_import_torch(torch_free, file):
    out = torch_free[("validate", "--no-deep", file)]
    assert out["exception"] is None, out
    assert out["exit_code"] == 0, out
    assert re.search(rf"^ok {re.escape(file)}\b", out["output"], re.M), out["output"]
    assert not out["torch"], f"validate --no-deep imported torch (by this file or one before): {out['torch_modules']}"


def test_validate_no_deep_on_a_broken_file_does_not_import_torch(torch_free):
    out = torch_free[("validate", "--no-deep", str(torch_free[("broken",)]))]
    assert out["exit_code"] == 1, out
    assert "unknown key" in out["output"]
    assert not out["torch"], f"validate --no-deep imported torch: {out['torch_modules']}"


@pytest.mark.slow
def test_deep_validate_does_import_torch():
    """Control for the tests above: the same probe does see torch when the deep check runs."""
    (out,) = invoke_in_fresh_interpreter(["validate", "examples/pima_mlp/model.yaml"])
    assert out["exit_code"] == 0, out
    assert out["torch"]


# ----------------------------------------------------------------------------------------------
# validate


def test_validate_all_examples():
    result = specml("validate", *EXAMPLE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    for file in EXAMPLE_FILES:
        assert re.search(rf"^ok {re.escape(file)}: ", result.stdout, re.M), result.stdout
    assert len(re.findall(r"^ok ", result.stdout, re.M)) == len(EXAMPLE_FILES)
    assert "error" not in result.stderr
    no_traceback(result)


def test_validate_summary_counts_parameters():

    result = specml("validate", "examples/pima_mlp/model.yaml")
    assert result.returncode == 0, result.stderr
    total = sum(p.numel() for p in model_from(ROOT / "examples/pima_mlp/model.yaml").parameters())
    assert f"{total:,} parameters" in result.stdout


BROKEN = {
    # name: (file text, marker on the offending line, field path, words in the message, suggestion)
    "unknown_key": (
        """\
        inputs:
          x:
            shape: [null, 4]
        graph:
          - name: hidden1
            type: torch.nn.Linear
            parms: {in_features: 4, out_features: 2}
            inputs: {input: x}
        outputs:
          y: hidden1.output
        """,
        "parms:", "graph[0].parms", "unknown key 'parms'", "did you mean 'params'?",
    ),
    "bad_reference": (
        """\
        inputs:
          x:
            shape: [null, 4]
        graph:
          - name: hidden1
            type: torch.nn.Linear
            params: {in_features: 4, out_features: 2}
            inputs: {input: x}
          - name: act
            type: torch.nn.ReLU
            inputs: {input: hiden1.output}
        outputs:
          y: act.output
        """,
        "hiden1.output", "graph[1].inputs.input", "unknown reference 'hiden1.output'",
        "did you mean 'hidden1.output'?",
    ),
    "unknown_layer_type": (
        """\
        inputs:
          x:
            shape: [null, 4]
        graph:
          - name: hidden1
            type: torch.nn.Linaer
            params: {in_features: 4, out_features: 2}
            inputs: {input: x}
        outputs:
          y: hidden1.output
        """,
        "Linaer", "graph[0].type", "unknown type 'torch.nn.Linaer'", "did you mean 'torch.nn.Linear'?",
    ),
}


def write_broken(tmp_path: Path, case: str) -> tuple[Path, int, str, str, str]:
    text, marker, path, message, hint = BROKEN[case]
    text = textwrap.dedent(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if marker in ln)
    file = tmp_path / f"{case}.yaml"
    file.write_text(text, encoding="utf-8")
    return file, line, path, message, hint


# type names are resolved by the deep check only, so the unknown type has no --no-deep case
BROKEN_RUNS = [(case, deep) for case in sorted(BROKEN) for deep in (True, False)
               if deep or case != "unknown_layer_type"]


@pytest.mark.parametrize("case, deep", BROKEN_RUNS, ids=[f"{c}-{'deep' if d else 'no-deep'}" for c, d in BROKEN_RUNS])
def test_validate_broken_file(tmp_path, case, deep):
    file, line, path, message, hint = write_broken(tmp_path, case)
    result = specml("validate", *([] if deep else ["--no-deep"]), file)
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr
    assert f"{file}:{line}: {path}: " in err, err
    assert message in err, err
    assert hint in err, err
    assert "did you mean" in err
    assert not re.search(r"^ok ", result.stdout, re.M), result.stdout
    no_traceback(result)


def test_validate_reports_every_file_and_fails_if_one_is_broken(tmp_path):
    file = write_broken(tmp_path, "bad_reference")[0]
    result = specml("validate", "examples/pima_mlp/model.yaml", file, "examples/pima_mlp/trainer.yaml")
    assert result.returncode == 1
    assert re.search(r"^ok examples/pima_mlp/model\.yaml: ", result.stdout, re.M), result.stdout
    assert re.search(r"^ok examples/pima_mlp/trainer\.yaml: ", result.stdout, re.M), result.stdout
    assert str(file) in result.stderr
    no_traceback(result)


def test_validate_reports_all_issues_of_a_file(tmp_path):
    file = tmp_path / "two.yaml"
    file.write_text(textwrap.dedent("""\
        inputs:
          x: {shape: [null, 4]}
        graph:
          - {name: a, type: torch.nn.ReLU, inputs: {input: y}}
          - {name: b, type: torch.nn.ReLU, inputs: {input: zz.output}}
        outputs:
          out: b.output
        """), encoding="utf-8")
    result = specml("validate", file)
    assert result.returncode == 1
    assert f"{file}:4: graph[0].inputs.input: " in result.stderr, result.stderr
    assert f"{file}:5: graph[1].inputs.input: " in result.stderr, result.stderr


JSON_KEYS = {"file", "valid", "kind", "errors", "warnings"}
ISSUE_KEYS = {"file", "line", "path", "message", "hint"}


def test_validate_json(tmp_path):
    broken, line, path, message, _ = write_broken(tmp_path, "unknown_key")
    missing = tmp_path / "missing.yaml"
    files = [*EXAMPLE_FILES, str(broken), str(missing)]
    result = specml("validate", "--json", *files)
    assert result.returncode == 1, result.stderr
    entries = json.loads(result.stdout)
    assert isinstance(entries, list) and len(entries) == len(files)
    for entry, file in zip(entries, files, strict=True):
        assert JSON_KEYS <= set(entry), entry
        assert entry["file"] == file
        assert isinstance(entry["errors"], list) and isinstance(entry["warnings"], list)
        for issue in entry["errors"]:
            assert ISSUE_KEYS <= set(issue), issue
            assert issue["message"], issue
    by_file = {e["file"]: e for e in entries}
    for file in EXAMPLE_FILES:
        entry = by_file[file]
        assert entry["valid"] is True and entry["errors"] == [], entry
        expected = ("model" if file.endswith("model.yaml") else
                    "estimator" if file.startswith("examples/classical/") else "trainer")
        assert entry["kind"] == expected, entry
    bad = by_file[str(broken)]
    assert bad["valid"] is False and bad["kind"] is None
    first = bad["errors"][0]
    assert (first["file"], first["line"], first["path"]) == (str(broken), line, path), first
    assert message in first["message"]
    assert "did you mean" in first["hint"]
    gone = by_file[str(missing)]
    assert gone["valid"] is False and "file not found" in gone["errors"][0]["message"]
    no_traceback(result)


def test_validate_json_all_valid_exits_0():
    result = specml("validate", "--json", *EXAMPLE_FILES)
    assert result.returncode == 0, result.stderr
    assert all(e["valid"] for e in json.loads(result.stdout))


def test_validate_json_collects_warnings(tmp_path):
    file = tmp_path / "unused.yaml"
    file.write_text(textwrap.dedent("""\
        inputs:
          x: {shape: [null, 4]}
        graph:
          - {name: used, type: torch.nn.ReLU, inputs: {input: x}}
          - {name: unused, type: torch.nn.Tanh, inputs: {input: x}}
        outputs:
          y: used.output
        """), encoding="utf-8")
    result = specml("validate", "--json", file)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry["valid"] is True
    assert any("unused" in w for w in entry["warnings"]), entry


# ----------------------------------------------------------------------------------------------
# files that are not specs: clear message, exit 1, no traceback


@pytest.mark.parametrize("command", ["validate", "describe"])
def test_missing_file(tmp_path, command):
    missing = tmp_path / "nope" / "model.yaml"
    result = specml(command, missing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "file not found" in result.stderr
    assert str(missing) in result.stderr
    no_traceback(result)


NOT_SPECS = {
    "invalid_yaml": (b"inputs:\n  x: {shape: [null, 4]\ngraph:\n  - name: [a\n", "not valid YAML"),
    "tab_indent": (b"inputs:\n\tx: 1\n", "not valid YAML"),
    "duplicate_key": (b"inputs:\n  x: {shape: [null, 4]}\ninputs:\n  y: {shape: [null, 2]}\n", "written twice"),
    "empty": (b"", "expected a mapping"),
    "a_list": (b"- 1\n- 2\n", "expected a mapping"),
    "not_utf8": (b"inputs: \xff\xfe\x00\n", "cannot read file"),
    "unrelated_mapping": (b"hello: world\n", "cannot tell whether this is a model spec or a trainer spec"),
}


@pytest.mark.parametrize("command", ["validate", "describe"])
@pytest.mark.parametrize("case", sorted(NOT_SPECS))
def test_not_a_spec(tmp_path, case, command):
    content, expected = NOT_SPECS[case]
    file = tmp_path / f"{case}.yaml"
    file.write_bytes(content)
    result = specml(command, file)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stderr, result.stderr
    assert str(file) in result.stderr
    no_traceback(result)


def test_invalid_yaml_names_the_line(tmp_path):
    file = tmp_path / "bad.yaml"
    file.write_text("inputs:\n  x: {shape: [null, 4]}\ngraph:\n  - name: a\n    type: [torch.nn.ReLU\n",
                    encoding="utf-8")
    result = specml("validate", file)
    assert result.returncode == 1
    assert re.search(rf"{re.escape(str(file))}:\d+: ", result.stderr), result.stderr
    no_traceback(result)


def test_directory_is_not_a_spec(tmp_path):
    result = specml("validate", tmp_path)
    assert result.returncode == 1
    assert str(tmp_path) in result.stderr
    no_traceback(result)


# ----------------------------------------------------------------------------------------------
# describe


def table_rows(text: str) -> dict[str, list[str]]:
    """The body rows of a rich table, keyed by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip().strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


PIMA_SHAPES = {
    "hidden1": "[B, 64]", "relu1": "[B, 64]", "dropout1": "[B, 64]", "hidden2": "[B, 32]", "relu2": "[B, 32]",
    "classifier": "[B, 1]", "probability": "[B, 1]",
}


def test_describe_pima_mlp():
    from specml.spec.yaml_io import read_yaml

    spec_file = "examples/pima_mlp/model.yaml"
    result = specml("describe", spec_file)
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    raw = read_yaml(ROOT / spec_file)[0]
    model = model_from(ROOT / spec_file)
    rows = table_rows(result.stdout)
    assert set(rows) == {n["name"] for n in raw["graph"]} | {"total"}, result.stdout
    assert set(PIMA_SHAPES) == {n["name"] for n in raw["graph"]}
    for node in raw["graph"]:
        name, type_, shape, params = rows[node["name"]]
        assert type_ == node["type"]
        assert shape == PIMA_SHAPES[node["name"]], (node["name"], shape)
        count = sum(p.numel() for p in model.nodes[name].parameters()) if name in model.nodes else 0
        assert params == (f"{count:,}" if count else "-"), (name, params, count)
    assert rows["hidden1"][2] == "[B, 64]"
    total = sum(p.numel() for p in model.parameters())
    assert total == 8 * 64 + 64 + 64 * 32 + 32 + 32 + 1
    assert rows["total"][-1] == f"{total:,}"
    assert f"parameters: {total:,} ({total:,} trainable)" in result.stdout
    assert "logits [B, 1]" in result.stdout and "prediction [B, 1]" in result.stdout
    assert "binary_cross_entropy_with_logits" in result.stdout


@pytest.mark.parametrize("file", MODEL_FILES)
def test_describe_every_example_total_is_the_real_parameter_count(file):
    from specml.graph.check import placeholder_vocab_sizes
    from specml.spec import load_model_spec
    from specml.spec.yaml_io import read_yaml

    result = specml("describe", file)
    assert result.returncode == 0, result.stderr
    spec = load_model_spec(ROOT / file, check=False)
    model = model_from(spec, vocab_sizes=placeholder_vocab_sizes(spec))
    rows = table_rows(result.stdout)
    total = sum(p.numel() for p in model.parameters())
    assert rows["total"][-1] == f"{total:,}", result.stdout
    shown = sum(int(r[-1].rstrip(" *").replace(",", "")) for k, r in rows.items() if k != "total" and r[-1] != "-")
    assert shown == total, f"the rows add up to {shown}, the model has {total}"
    for node in read_yaml(ROOT / file)[0]["graph"]:
        assert node["name"] in rows, node["name"]
        assert re.fullmatch(r"\[B(, \d+)*\]|\[.*\]|\(.*\)|\{.*\}", rows[node["name"]][2]), rows[node["name"]]
    no_traceback(result)


@pytest.mark.parametrize("file", TRAINER_FILES)
def test_describe_trainer_spec_is_refused(file):
    result = specml("describe", file)
    assert result.returncode == 1
    assert "trainer spec" in result.stderr and "model spec" in result.stderr, result.stderr
    assert file in result.stderr
    assert "┃" not in result.stdout, "a table was printed for a trainer spec"
    no_traceback(result)


def test_describe_broken_model(tmp_path):
    file, line, path, message, _ = write_broken(tmp_path, "unknown_layer_type")
    result = specml("describe", file)
    assert result.returncode == 1
    assert f"{file}:{line}: {path}: " in result.stderr
    assert message in result.stderr
    no_traceback(result)


# ----------------------------------------------------------------------------------------------
# schema


@pytest.mark.parametrize("kind, fields", [("model", {"inputs", "graph", "outputs", "loss"}),
                                          ("trainer", {"optimizer", "config", "scheduler"})])
def test_schema_prints_json(kind, fields):
    result = specml("schema", kind)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert "$schema" in schema
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert fields <= set(schema["properties"]), sorted(schema["properties"])


@pytest.mark.parametrize("kind", ["model", "trainer"])
def test_schema_out_writes_file(tmp_path, kind):
    out = tmp_path / f"{kind}.schema.json"
    result = specml("schema", kind, "--output", out)
    assert result.returncode == 0, result.stderr
    assert out.exists()
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written == json.loads(specml("schema", kind).stdout)
    assert "$schema" in written
    assert str(out) in result.stdout
    assert "{" not in result.stdout, "the schema went to stdout as well as the file"


def test_schema_output_never_replaces_a_file_or_writes_into_a_directory(tmp_path, cli):
    out = tmp_path / "mine.json"
    out.write_text("keep me")
    assert failed(cli("schema", "model", "--output", out)).startswith(f"error: --output {out} already exists; pass "
                                                                       "--replace")
    assert out.read_text() == "keep me"
    assert failed(cli("schema", "model", "--output", tmp_path)).startswith(f"error: --output {tmp_path} is a directory")
    assert failed(cli("schema", "model", "--output", tmp_path / "no" / "x.json")).startswith("error: cannot write")
    ok(cli("schema", "model", "--output", out, "--replace"))
    assert json.loads(out.read_text())["$schema"].startswith("https://json-schema.org/")


def test_schema_validates_the_examples():
    """The schema the CLI prints is the one an editor uses: every example file conforms to it."""
    import jsonschema

    from specml.spec.yaml_io import read_yaml

    schemas = {kind: json.loads(specml("schema", kind).stdout) for kind in ("model", "trainer", "estimator")}
    for file in EXAMPLE_FILES:
        kind = ("model" if file.endswith("model.yaml") else
                "estimator" if file.startswith("examples/classical/") else "trainer")
        jsonschema.validate(read_yaml(ROOT / file)[0], schemas[kind])


def test_schema_unknown_kind():
    result = specml("schema", "optimizer")
    assert result.returncode != 0
    assert "optimizer" in result.stderr
    no_traceback(result)
