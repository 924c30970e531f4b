"""Reading spec files: safe YAML, YAML-1.2 numbers, duplicate keys refused, line numbers kept.

PyYAML follows YAML 1.1, where ``1e-5`` is a *string* (it wants ``1.0e-5``) and a key written twice
silently keeps the last value. Spec files are written by people who expect ``1e-5`` to be a number
and who lose a setting without notice when a key is repeated, so this loader fixes both.

The work a file can cause is bounded before anything is expanded: its size (:data:`MAX_BYTES`), how
deep it nests (:data:`MAX_DEPTH`, counted on the token stream, which needs no recursion) and how many
values its aliases expand to (:data:`MAX_NODES`, counted on the node graph with each anchor counted
once, so a "billion laughs" file is refused in microseconds). A recursive alias, a control character,
a tag whose value does not parse (``!!int abc``) and timestamps (a spec has none) are clean errors with
the file and line. ``SPECML_MAX_SPEC_BYTES`` raises the size limit.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import yaml

from specml.env import number
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
    """SafeLoader with YAML 1.2 floats (``1e-5``); remembers the node it last constructed (for the line
    of a tagged value that does not parse)."""

    at: yaml.Node | None = None

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        self.at = node
        return super().construct_object(node, deep)


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
# YAML 1.2's core schema has no timestamps: `2024-01-01` stays a string, `!!timestamp` is refused
for _key, _resolvers in list(_Loader.yaml_implicit_resolvers.items()):
    _Loader.yaml_implicit_resolvers[_key] = [(t, rx) for t, rx in _resolvers if t != "tag:yaml.org,2002:timestamp"]
_Loader.yaml_constructors = {k: v for k, v in yaml.SafeLoader.yaml_constructors.items()
                             if k not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary",
                                          "tag:yaml.org,2002:set", "tag:yaml.org,2002:omap",
                                          "tag:yaml.org,2002:pairs")}

MAX_BYTES = 1 << 20     # a spec file is text a person writes: 1 MiB is far beyond any real one
MAX_DEPTH = 64          # nesting of mappings / sequences
MAX_NODES = 100_000     # values after alias expansion


def max_bytes() -> int:
    return number("SPECML_MAX_SPEC_BYTES", MAX_BYTES)


def _too_deep(text: str, file: str | None) -> None:
    """Refuse nesting deeper than MAX_DEPTH, from the tokens alone (the composer would recurse)."""
    opens = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
             yaml.FlowSequenceStartToken)
    closes = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    scanner = _Loader(text)  # a control character is refused here, as a YAMLError
    depth = 0
    try:
        while True:
            token = scanner.get_token()
            if token is None or isinstance(token, yaml.StreamEndToken):
                return
            if isinstance(token, opens):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SpecError([SpecIssue((), f"the YAML nests deeper than {MAX_DEPTH} levels",
                                               "a spec never needs that; is the file generated?", file,
                                               token.start_mark.line + 1)])
            elif isinstance(token, closes):
                depth -= 1
    finally:
        scanner.dispose()


def _expanded_size(root: yaml.Node, file: str | None) -> None:
    """Count the values the node graph expands to (each anchored node's size computed once); refuse a
    recursive alias and an expansion beyond MAX_NODES. Iterative: no recursion on hostile input."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else
                    list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if done:
            on_path.discard(key)
            size[key] = min(1 + sum(size[id(c)] for c in children), MAX_NODES + 1)
            if size[key] > MAX_NODES:
                raise SpecError([SpecIssue((), f"the YAML's aliases expand to more than {MAX_NODES:,} values",
                                           "write the values out, or use fewer nested aliases", file,
                                           node.start_mark.line + 1)])
            continue
        if key in size:
            continue
        if key in on_path:
            raise SpecError([SpecIssue((), "a recursive alias: a value contains itself", None, file,
                                       node.start_mark.line + 1)])
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise SpecError([SpecIssue((), "a recursive alias: a value contains itself", None, file,
                                           child.start_mark.line + 1)])
            if id(child) not in size:
                stack.append((child, False))


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


_PARSED: OrderedDict[tuple, tuple[Any, dict[Loc, int]]] = OrderedDict()
_PARSED_KEPT = 32  # documents remembered: a training reads its two spec files several times over
_PARSED_LOCK = threading.Lock()


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, dict[Loc, int]]:
    """Parse one YAML document; return the data and a map of field path -> line number.

    A key written twice in one mapping is an error (PyYAML would keep the last value silently).
    The same text is parsed once per process (the caller gets its own copy of the data).
    """
    key = (text, file, max_bytes(), MAX_DEPTH, MAX_NODES)  # the limits it passed are part of the answer
    with _PARSED_LOCK:  # threads (the prediction server, background figures) may read specs at once
        kept = _PARSED.get(key)
        if kept is not None:
            _PARSED.move_to_end(key)
    if kept is not None:
        return copy.deepcopy(kept[0]), dict(kept[1])
    data, lines = _parse(text, file)
    with _PARSED_LOCK:
        _PARSED[key] = (copy.deepcopy(data), dict(lines))
        while len(_PARSED) > _PARSED_KEPT:
            _PARSED.popitem(last=False)
    return data, lines


def _parse(text: str, file: str | None) -> tuple[Any, dict[Loc, int]]:
    if len(text) > max_bytes():
        raise SpecError([SpecIssue((), f"the file is {len(text):,} characters; a spec may have at most "
                                       f"{max_bytes():,}", "set SPECML_MAX_SPEC_BYTES to allow more", file)])
    loader = None
    try:
        _too_deep(text, file)
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None, {}
        _expanded_size(node, file)
        dupes: list[SpecIssue] = []
        lines = _line_map(node, dupes=dupes)
        if dupes:
            raise SpecError([SpecIssue(d.loc, d.message, d.hint, file, d.line) for d in dupes])
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        if line is None and isinstance(getattr(exc, "position", None), int):  # a reader error: a bad character
            line = text.count("\n", 0, exc.position) + 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([SpecIssue((), f"not valid YAML: {' '.join(str(problem).split())}", None, file,
                                   line)]) from None
    except SpecError:
        raise
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # a tagged value that does not parse
        at = loader.at if loader is not None else None
        raise SpecError([SpecIssue((), f"not valid YAML: a value cannot be read ({exc})",
                                   "remove the explicit !!tag", file,
                                   at.start_mark.line + 1 if at is not None else None)]) from None
    finally:
        if loader is not None:
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
