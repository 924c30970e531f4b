"""Every `specml ...` line README.md and docs/*.md show runs as written (slow: it trains).

The guides named in :data:`APART` run from ``tests/test_docs_guides.py``.

The extraction and the rules (usage forms skipped, lines shown with an ``error`` must fail) are in
``tests/doclines.py``; the examples' READMEs run in ``tests/examples/test_examples_readme.py``.
"""

from __future__ import annotations

import json
import re

import pytest

from doclines import ROOT, argv, commands, run_document, runnable, usage_form

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# the two longest guides run from their own file, so that the two test workers (one file each) share the time
APART = ("classical.md", "families.md")
SEED = re.compile(r"\bseed \d{3}\b|§\d", re.IGNORECASE)  # "seed 003's configuration", "§7"


HERE = [p for p in DOCS if p.name not in APART]


@pytest.mark.slow
@pytest.mark.parametrize("doc", HERE, ids=[p.name for p in HERE])
def test_documented_commands_run_as_written(doc, tmp_path):
    if not runnable(doc):
        pytest.skip(f"{doc.name} shows no runnable specml line")
    failures = run_document(doc, tmp_path)
    assert not failures, f"{doc.name}:\n" + "\n".join(failures)


def test_the_extraction_finds_the_readme_flow():
    found = [c for c, _ in commands(ROOT / "README.md")]
    assert found[0] == "specml data sample pima"
    assert any(c.startswith("specml train --model-spec examples/pima_mlp/model.yaml") for c in found)
    assert usage_form("specml jobs logs 3 [--follow] [--lines N]") and usage_form("specml train ... --background")
    assert not usage_form('specml model --name dia --instruction "Build a model" --table pima --dry-run')


def test_a_redirect_ends_the_command_but_a_quoted_comparison_does_not():
    assert argv("specml schema model > model.schema.json") == ["specml", "schema", "model"]
    assert argv('specml sql "create table t as select * from pima where bmi > 0"') == [
        "specml", "sql", "create table t as select * from pima where bmi > 0"]


def test_the_documents_speak_in_the_users_terms():
    """No document, example or schema refers the reader to the project's seed texts ("seed 003's configuration")."""
    from specml.spec.schema import json_schema

    files = [*DOCS, *sorted((ROOT / "examples").rglob("*.md")), *sorted((ROOT / "examples").rglob("*.yaml"))]
    said = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in files
            for line in p.read_text(encoding="utf-8").splitlines() if SEED.search(line)]
    said += [f"specml schema {kind}" for kind in ("model", "trainer", "estimator")
             if SEED.search(json.dumps(json_schema(kind)))]
    assert not said, "\n".join(said)

