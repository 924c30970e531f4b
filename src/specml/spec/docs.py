"""The docs' settings tables, generated from the spec models so that they cannot drift.

A table sits in a Markdown file between ``<!-- generated:NAME -->`` and ``<!-- /generated -->``;
:data:`BLOCKS` says which model (or table function) fills which block. ``python -m specml.spec.docs --write`` rewrites
the blocks; ``--check`` exits 1 when a file differs from what would be written (a test runs it).
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from specml.spec.metrics import CATALOGUE, HIGHER_IS_BETTER
from specml.spec.trainer import OptimizerSpec, SchedulerSpec, TrainerConfig, callbacks_table

__all__ = ["BLOCKS", "check", "metrics_table", "render", "settings_table", "write"]

Source = type[BaseModel] | Callable[[], str]


def metrics_table() -> str:
    """The metrics catalogue as a Markdown table: per task, its metrics, defaults and main metric."""
    rows = ["| task | metrics | reported by default | ranks models | higher is better |", "|---|---|---|---|---|"]
    for task, entry in CATALOGUE.items():
        better = ", ".join(m for m in entry.allowed if HIGHER_IS_BETTER[m])
        rows.append(f"| {task} | {', '.join(entry.allowed)} | {', '.join(entry.default)} | {entry.main} | "
                    f"{better} |")
    return "\n".join(rows) + "\n"


#: docs file (relative to the repository root) -> block name -> the model whose fields it lists (or a table)
BLOCKS: dict[str, dict[str, Source]] = {
    "docs/trainer-spec.md": {
        "trainer-optimizer": OptimizerSpec,
        "trainer-scheduler": SchedulerSpec,
        "trainer-config": TrainerConfig,
        "metrics-catalogue": metrics_table,
        "trainer-callbacks": callbacks_table,
    },
}
_BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.DOTALL)
_ROOT = Path(__file__).resolve().parents[3]


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    if isinstance(value, list):
        return "[]" if not value else str(value)
    return str(value)


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return _yaml(info.default_factory())
    if info.default is PydanticUndefined:
        return "required"
    return _yaml(info.default)


def _bounds(metadata: list) -> str:
    """``> 0``, ``0 <= x < 1``, ... from annotated-types constraints."""
    lo = hi = None
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            lo = ("gt", m.gt)
        elif isinstance(m, annotated_types.Ge):
            lo = ("ge", m.ge)
        elif isinstance(m, annotated_types.Lt):
            hi = ("lt", m.lt)
        elif isinstance(m, annotated_types.Le):
            hi = ("le", m.le)
    sign = {"gt": "<", "ge": "≤", "lt": "<", "le": "≤"}
    if lo and hi:
        return f"{lo[1]} {sign[lo[0]]} x {sign[hi[0]]} {hi[1]}"
    if lo:
        return f"{'>' if lo[0] == 'gt' else '≥'} {lo[1]}"
    if hi:
        return f"{'<' if hi[0] == 'lt' else '≤'} {hi[1]}"
    return ""


def _type_text(annotation: Any, metadata: list | None = None) -> str:
    """A field's type in words: ``integer > 0``, ``one of min, max``, ``number, or null``."""
    metadata = list(metadata or [])
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return _type_text(base, metadata + list(extra))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        parts = [_type_text(a, metadata) for a in args if a is not type(None)]
        return " or ".join(parts) + (", or null" if type(None) in args else "")
    if origin is typing.Literal:
        values = [_yaml(v) for v in typing.get_args(annotation)]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if origin is list:
        return f"list of {_type_text(typing.get_args(annotation)[0])}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map {_type_text(key)} → {_type_text(value)}"
    names = {bool: "true/false", int: "integer", float: "number", str: "text", Any: "any"}
    word = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = _bounds(metadata)
    return f"{word} {bounds}" if bounds else word


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: pipes and "<" escaped, one line."""
    return text.replace("|", "\\|").replace("<", "\\<").replace("\n", " ")


def settings_table(model_cls: type[BaseModel]) -> str:
    """A Markdown table of ``model_cls``'s fields: name, default, accepted values, description."""
    rows = ["| field | default | accepts | what it does |", "|---|---|---|---|"]
    for name, info in model_cls.model_fields.items():
        accepts = _type_text(info.annotation, info.metadata)
        rows.append(f"| `{name}` | {_cell(_default(info))} | {_cell(accepts)} | {_cell(info.description or '')} |")
    return "\n".join(rows) + "\n"


def _table(source: Source) -> str:
    return settings_table(source) if isinstance(source, type) and issubclass(source, BaseModel) else source()


def render(text: str, blocks: dict[str, Source], where: str = "") -> str:
    """``text`` with every generated block it holds rewritten; ValueError for a block :data:`BLOCKS` lacks."""
    def fill(match: re.Match) -> str:
        name = match.group("name")
        if name not in blocks:
            raise ValueError(f"{where}: unknown generated block '{name}' (known: {', '.join(blocks)})")
        return match.group(1) + _table(blocks[name]) + match.group(4)

    return _BLOCK.sub(fill, text)


def _files(root: Path) -> list[tuple[Path, str, str]]:
    """(path, current text, generated text) of every docs file with blocks."""
    out = []
    for rel, blocks in BLOCKS.items():
        path = root / rel
        text = path.read_text(encoding="utf-8")
        missing = [n for n in blocks if f"<!-- generated:{n} -->" not in text]
        if missing:
            raise ValueError(f"{rel}: no '<!-- generated:{missing[0]} -->' ... '<!-- /generated -->' block")
        out.append((path, text, render(text, blocks, rel)))
    return out


def check(root: Path = _ROOT) -> list[Path]:
    """The docs files whose generated blocks differ from the spec models."""
    return [path for path, text, new in _files(root) if text != new]


def write(root: Path = _ROOT) -> list[Path]:
    """Rewrite the generated blocks; the files changed."""
    changed = []
    for path, text, new in _files(root):
        if text != new:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m specml.spec.docs", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated block is out of date")
    parser.add_argument("--root", type=Path, default=_ROOT, help="the repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        if args.write:
            for path in write(args.root):
                print(f"rewrote {path}")
            return 0
        stale = check(args.root)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in stale:
        print(f"out of date: {path} (run python -m specml.spec.docs --write)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
