"""Reading spec files: safe YAML, YAML-1.2 numbers, duplicate keys refused, line numbers kept.

PyYAML follows YAML 1.1, where ``1e-5`` is a *string* (it wants ``1.0e-5``) and a key written twice
silently keeps the last value. Spec files are written by people who expect ``1e-5`` to be a number
and who lose a setting without notice when a key is repeated, so this loader fixes both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from specml.spec.errors import Loc, SpecError, SpecIssue

_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (``1e-5``)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _line_map(node: yaml.Node, loc: Loc = (), out: dict[Loc, int] | None = None,
              dupes: list[SpecIssue] | None = None) -> dict[Loc, int]:
    """Field path -> 1-based line for every key and item; a key written twice goes to ``dupes``."""
    out = {} if out is None else out
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            line = key_node.start_mark.line + 1
            if (*loc, key) in out and dupes is not None:
                dupes.append(SpecIssue((*loc, key), f"key '{key}' is written twice (lines {out[(*loc, key)]} and "
                                                     f"{line}); the first value would be lost", "keep one of them",
                                       None, line))
                continue
            out[(*loc, key)] = line
            _line_map(value_node, (*loc, key), out, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*loc, i)] = item.start_mark.line + 1
            _line_map(item, (*loc, i), out, dupes)
    return out


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse one YAML document; return the data and a map of field path -> line number.

    A key written twice in one mapping is an error (PyYAML would keep the last value silently).
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        dupes: list[SpecIssue] = []
        lines = _line_map(node, dupes=dupes)
        if dupes:
            raise SpecError([SpecIssue(d.loc, d.message, d.hint, file, d.line) for d in dupes])
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([SpecIssue((), f"not valid YAML: {problem}", None, file, line)]) from None
    finally:
        loader.dispose()
    return data, lines


def read_yaml(path: str | Path) -> tuple[Any, dict[Loc, int]]:
    """Read a spec file; a missing or unreadable file is a :class:`SpecError`, not a traceback."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecIssue((), "file not found", None, str(path))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue((), f"cannot read file: {exc}", None, str(path))]) from None
    return parse_yaml(text, str(path))


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True)
