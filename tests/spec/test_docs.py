"""specml.spec.docs: the docs' settings tables are generated from the spec models and cannot drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import Field

from specml.spec.base import StrictModel
from specml.spec.docs import BLOCKS, check, main, render, settings_table, write
from specml.spec.trainer import TrainerConfig

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_tables_are_the_generated_ones():
    stale = check(ROOT)
    assert stale == [], f"run: python -m specml.spec.docs --write  ({', '.join(map(str, stale))})"


def test_every_config_field_is_in_the_docs_with_its_default():
    text = (ROOT / "docs" / "trainer-spec.md").read_text(encoding="utf-8")
    for name in TrainerConfig.model_fields:
        assert f"| `{name}` |" in text, name
    assert "| `save_best_only` | false |" in text and "| `early_stopping_min_delta` | 0.001 |" in text


class Example(StrictModel):
    rate: float = Field(0.5, gt=0.0, le=1.0, description="How much <of it> | per step.")
    name: str | None = Field(None, description="A name.")
    count: int = Field(..., ge=0, description="Items.")


def test_settings_table():
    table = settings_table(Example)
    assert table.splitlines() == [
        "| field | default | accepts | what it does |",
        "|---|---|---|---|",
        "| `rate` | 0.5 | number 0.0 \\< x ≤ 1.0 | How much \\<of it> \\| per step. |",
        "| `name` | null | text, or null | A name. |",
        "| `count` | required | integer ≥ 0 | Items. |",
    ]


def test_render_rewrites_only_the_blocks():
    text = "intro\n<!-- generated:example -->\nold\n<!-- /generated -->\noutro\n"
    out = render(text, {"example": Example})
    assert out.startswith("intro\n<!-- generated:example -->\n| field |")
    assert out.endswith("<!-- /generated -->\noutro\n")
    with pytest.raises(ValueError, match="unknown generated block 'example'"):
        render(text, {})


def test_check_finds_a_stale_table_and_write_fixes_it(tmp_path, capsys):
    for rel in BLOCKS:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    doc = tmp_path / "docs" / "trainer-spec.md"
    doc.write_text(doc.read_text(encoding="utf-8").replace("| `save_best_only` | false |",
                                                           "| `save_best_only` | true |"), encoding="utf-8")
    assert check(tmp_path) == [doc]
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert write(tmp_path) == [doc] and check(tmp_path) == []
    assert main(["--check", "--root", str(tmp_path)]) == 0
