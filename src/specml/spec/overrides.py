"""Overrides of spec files in Hydra's grammar, presets, and ``${...}`` references between settings.

    specml train ... trainer.config.epochs=20 trainer.optimizer.lr=3e-4 model.graph.h1.params.out_features=64
    specml train ... +trainer.config.gradient_clip_norm=1.0 ~trainer.scheduler --preset quick

One namespace covers the specs of a run: ``model.*`` (the model spec) and ``trainer.*`` (the trainer
spec, wherever it is written: its own file or a ``training:`` section). ``optimizer.``, ``config.``,
``scheduler.``, ``inputs.``, ``graph.``, ``outputs.`` may drop the ``trainer.`` / ``model.`` prefix. An
estimator spec's namespace is the file itself (``estimator.params.max_depth=4``). In a list of named
mappings (the graph) an item is addressed by its ``name`` (or its index).

* ``path=value`` changes a setting; the path must exist in the file or be a field the schema knows
  (a typo gets "did you mean"); free-form mappings (a node's ``params``) take new keys only with ``+``.
* ``+path=value`` adds a setting that is not there; ``++path=value`` adds or replaces.
* ``~path`` deletes (``~path=value``: only when it holds that value); ``~model.graph.dropout1`` removes a node.
* ``+experiment=NAME`` (or ``--preset NAME``) merges a preset first (:mod:`specml.spec.presets`).

Values are typed as YAML: ``3`` an int, ``1e-3`` a float, ``null``, ``true``, ``[64, 32]``, ``{a: 1}``,
``'quoted text'``. The edited mapping is then validated like the file; a problem in a value an override
or preset set is reported against that override (``error override 'trainer.config.epochs=0': ...``).

Why these libraries: the override grammar is Hydra's (``hydra-core``'s ANTLR ``OverridesParser``), so
what a Hydra user types means the same here — quoting, typed values, lists and dicts, and the sweep
forms ``a,b``, ``range()``, ``choice()``, ``interval()``, ``tag(log, ...)`` that multirun and the search
space read — without re-inventing a parser's corner cases. Only the parser is used: no Hydra app, no
working-directory change, no config groups; specs stay specml files checked by specml's schema. The
``${trainer.config.epochs}`` references are resolved by OmegaConf (Hydra's own config library, a
dependency of hydra-core), after the overrides, so a derived setting follows its source. Both are
imported only when a run has overrides or references.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specml.spec.base import concrete_types
from specml.spec.errors import Loc, SpecError, SpecIssue, did_you_mean, format_path

ROOTS = ("model", "trainer")
#: first path segments that belong to one part, so its prefix may be left out
_SHORT = {"optimizer": "trainer", "config": "trainer", "scheduler": "trainer", "model_ref": "trainer",
          "inputs": "model", "graph": "model", "outputs": "model", "modules": "model"}
#: ``+experiment=NAME`` names a preset (Hydra's convention for experiment configs)
PRESET_KEY = "experiment"
_SYNTAX = "write path=value, +path=value (add), ++path=value (add or replace) or ~path (delete)"


def _error(label: str, loc: Loc, message: str, hint: str | None = None) -> SpecError:
    return SpecError([SpecIssue(tuple(loc), message, hint, label)])


# ----------------------------------------------------------------------------------------------
# parsing


@dataclass(frozen=True)
class Override:
    """One parsed override: ``op`` is set, add, force (``++``) or delete; ``sweep`` lists a sweep's values
    as override texts (``a,b``, ``range()``, ``choice()``); ``interval`` is an ``interval()`` sweep."""

    text: str
    op: str
    path: tuple[str, ...]
    value: Any = None
    has_value: bool = True
    sweep: tuple[str, ...] | None = None
    interval: Any = None

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def is_sweep(self) -> bool:
        return self.sweep is not None or self.interval is not None

    @property
    def label(self) -> str:
        return f"override '{self.text}'"


def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def parse_override(text: str) -> Override:
    """One override string; a :class:`SpecError` naming it when it is not valid."""
    from hydra.errors import HydraException

    label = f"override '{text}'"
    if not isinstance(text, str) or not text.strip():
        raise _error(label, (), "an empty override", _SYNTAX)
    try:
        parsed = _parser().parse_override(text.strip())
    except HydraException as err:
        message = str(err).splitlines()[0]
        raise _error(label, (), f"not an override: {message}", _SYNTAX) from None
    if parsed.package is not None:
        raise _error(label, (), "'@package' is a Hydra config-group form; specs have no packages", _SYNTAX)
    path = tuple(parsed.key_or_group.split("."))
    if any(not part for part in path):
        raise _error(label, (), f"'{parsed.key_or_group}' is not a path", "segments are separated by single dots")
    op = "delete" if parsed.is_delete() else "force" if parsed.is_force_add() else "add" if parsed.is_add() else "set"
    if parsed.is_sweep_override():
        if op == "delete":
            raise _error(label, path, "a delete cannot sweep values")
        if parsed.is_interval_sweep():
            return Override(text, op, path, None, True, None, parsed.value())
        if parsed.value_type.name == "GLOB_CHOICE_SWEEP":
            raise _error(label, path, "glob() selects config groups in Hydra; list the values instead (a,b,c)")
        prefix = parsed.get_key_element()
        values = tuple(f"{prefix}={v}" for v in parsed.sweep_string_iterator())
        return Override(text, op, path, None, True, values)
    value = parsed.value()
    return Override(text, op, path, value, value is not None or op != "delete")


def parse_overrides(texts: Sequence[str]) -> list[Override]:
    """Every override of a command line; all problems reported at once."""
    out, issues = [], []
    for text in texts:
        try:
            out.append(parse_override(text))
        except SpecError as err:
            issues += err.issues
    if issues:
        raise SpecError(issues)
    return out


def looks_like_override(arg: str) -> bool:
    """True for ``path=value``, ``+path=...``, ``~path`` (and not for a file that exists)."""
    text = str(arg)
    if text.startswith(("~", "+")):
        return True
    head = text.split("=", 1)[0]
    return "=" in text and "/" not in head and not Path(text).exists()


# ----------------------------------------------------------------------------------------------
# the schema: which fields exist where (to accept a default that is not written, and for "did you mean")


def _is_model(tp: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _child(types_: list[Any], part: str | int) -> list[Any]:
    import typing

    out: list[Any] = []
    for tp in types_:
        if _is_model(tp):
            if isinstance(part, str) and part in tp.model_fields:
                out += concrete_types(tp.model_fields[part].annotation)
        elif typing.get_origin(tp) in (list, tuple) and isinstance(part, int):
            out += concrete_types(typing.get_args(tp)[0])
        elif typing.get_origin(tp) is dict and typing.get_args(tp):
            out += concrete_types(typing.get_args(tp)[1])
    return out


def _fields(types_: list[Any]) -> list[str]:
    return list(dict.fromkeys(f for tp in types_ if _is_model(tp) for f in tp.model_fields))


def _schema(part: str) -> list[Any]:
    if part == "model":
        from specml.spec.model import ModelSpec

        return [ModelSpec]
    if part == "trainer":
        from specml.spec.trainer import TrainerSpec

        return [TrainerSpec]
    from specml.spec.estimator import EstimatorSpec

    return [EstimatorSpec]


def _leaf_paths(part: str, leaf: str) -> list[str]:
    """Schema paths of ``part`` that end in ``leaf`` (``epochs`` -> ``trainer.config.epochs``)."""
    found: list[str] = []

    def walk(types_: list[Any], prefix: tuple[str, ...], depth: int) -> None:
        for name in _fields(types_):
            if name == leaf:
                found.append(".".join((*prefix, name)))
            if depth < 3:
                walk([t for t in _child(types_, name) if _is_model(t)], (*prefix, name), depth + 1)

    walk(_schema(part), (part,) if part in ROOTS else (), 0)
    return found


# ----------------------------------------------------------------------------------------------
# the namespace of one run's specs


@dataclass
class _Part:
    """One spec in the namespace: its mapping (inside the file's data), the file and where in it."""

    name: str                  # model, trainer or estimator
    data: dict
    file: str | None
    at: Loc                    # the mapping's place in its file


@dataclass
class _File:
    key: str                   # str(source)
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    blame: dict[Loc, tuple[str, tuple]] = field(default_factory=dict)   # file loc -> (label, namespace path)


def _parts_of(data: Any, file: str | None) -> list[_Part]:
    """The specs a file's mapping holds, in the layouts :func:`specml.spec.normalize.split_file` reads."""
    if not isinstance(data, dict):
        return []
    if "estimator" in data:
        return [_Part("estimator", data, file, ())]
    nested = data.get("model")
    if isinstance(nested, dict) and ("graph" in nested or "inputs" in nested):
        parts = [_Part("model", nested, file, ("model",))]
        if isinstance(data.get("trainer"), dict):
            parts.append(_Part("trainer", data["trainer"], file, ("trainer",)))
        return parts
    if any(k in data for k in ("graph", "inputs", "outputs", "modules")):
        parts = [_Part("model", data, file, ())]
        for key in ("training", "trainer"):
            if isinstance(data.get(key), dict):
                parts.append(_Part("trainer", data[key], file, (key,)))
                break
        return parts
    if any(k in data for k in ("optimizer", "config", "model_ref", "scheduler")):
        return [_Part("trainer", data, file, ())]
    return []


class _Namespace:
    """The parts of one run (model, trainer; or an estimator) across its files, edited in place."""

    def __init__(self, files: list[_File]) -> None:
        self.files = {f.key: f for f in files}
        self.parts: dict[str, _Part] = {}
        for f in files:
            for part in _parts_of(f.data, f.key):
                self.parts[part.name] = part   # a later file's part wins (a trainer file over a training: section)

    # -- where a path points ----------------------------------------------------------------------

    def part_for(self, path: tuple[str, ...], label: str) -> tuple[_Part, tuple[str, ...], tuple[str, ...]]:
        """(part, path inside it, the namespace prefix written) for an override path."""
        if "estimator" in self.parts:
            return self.parts["estimator"], path, ()
        head = path[0]
        if head in ROOTS:
            if head not in self.parts:
                have = " and ".join(self.parts) or "no spec"
                raise _error(label, path, f"there is no {head} spec here (the specs given hold {have})",
                             f"pass the {head} spec file too" if self.parts else None)
            if len(path) == 1:
                raise _error(label, path, f"'{head}' is a whole spec; override a setting inside it",
                             f"e.g. {head}.{'config.epochs' if head == 'trainer' else 'graph.NODE.params.NAME'}")
            return self.parts[head], path[1:], (head,)
        owner = _SHORT.get(head)
        if owner is None and head == "loss":
            owner = next((p for p in ROOTS if p in self.parts and "loss" in self.parts[p].data), "model")
        if owner is not None and owner in self.parts:
            return self.parts[owner], path, (owner,)
        if owner is not None:
            raise _error(label, path, f"'{head}' belongs to the {owner} spec, and there is none here",
                         f"pass the {owner} spec file too")
        raise self._unknown_root(label, path)

    def _unknown_root(self, label: str, path: tuple[str, ...]) -> SpecError:
        head = path[0]
        if head in ("name", "description", "version"):
            return _error(label, path, f"'{head}' is in both specs", f"write model.{head} or trainer.{head}")
        leaf = [p for part in self.parts for p in _leaf_paths(part, path[-1])]
        close = did_you_mean(head, [*ROOTS, *_SHORT], n=1)
        if len(path) > 1 and close:
            hint = f"did you mean '{'.'.join((close[0], *path[1:]))}'?"
        elif leaf:
            hint = f"did you mean '{leaf[0]}'?"
        else:
            hint = "paths start with model. or trainer. (or optimizer., config., scheduler., graph., inputs.)"
        return _error(label, path, f"unknown key '{head}'", hint)

    # -- walking -----------------------------------------------------------------------------------

    def _step(self, node: Any, seg: str, types_: list[Any], where: tuple[str, ...], label: str,
              create: bool) -> tuple[Any, str | int, list[Any], bool]:
        """(child, its key in ``node``, its schema types, whether it was created) for one path segment."""
        if isinstance(node, list):
            index = self._index(node, seg, where, label)
            if index is None:
                raise self._no_item(node, seg, where, label)
            return node[index], index, _child(types_, 0), False
        if not isinstance(node, dict):
            raise _error(label, where, f"is {node!r}, not a mapping: '{seg}' cannot be set inside it")
        if seg in node:
            return node[seg], seg, _child(types_, seg), False
        if not (create or seg in _fields(types_)):
            raise self._no_key(node, seg, types_, where, label)
        node[seg] = {}
        return node[seg], seg, _child(types_, seg), True

    @staticmethod
    def _index(items: list, seg: str, where: tuple, label: str) -> int | None:
        named = [i for i, item in enumerate(items) if isinstance(item, dict) and item.get("name") == seg]
        if named:
            return named[0]
        if re.fullmatch(r"-?\d+", seg):
            i = int(seg)
            if -len(items) <= i < len(items):
                return i % len(items)
            raise _error(label, (*where, seg), f"index {i} is past the end ({len(items)} item(s))")
        return None

    @staticmethod
    def _no_item(items: list, seg: str, where: tuple, label: str) -> SpecError:
        names = [str(i["name"]) for i in items if isinstance(i, dict) and "name" in i]
        hint = did_you_mean(seg, names)
        what = "node" if where[-1:] == ("graph",) else "item"
        return _error(label, (*where, seg), f"no {what} named '{seg}' in {format_path(where)}",
                      f"did you mean '{hint[0]}'?" if hint else (f"names: {', '.join(names)}" if names
                                                                 else "address items by their index"))

    @staticmethod
    def _no_key(node: dict, seg: str, types_: list[Any], where: tuple, label: str) -> SpecError:
        known = list(dict.fromkeys([*map(str, node), *_fields(types_)]))
        hint = did_you_mean(seg, known)
        if hint:
            return _error(label, (*where, seg), f"unknown key '{seg}'", f"did you mean '{hint[0]}'?")
        if not _fields(types_):   # a free-form mapping (a node's params): new keys need +
            return _error(label, (*where, seg), f"'{seg}' is not set in {format_path(where)}",
                          f"add it with +{'.'.join((*where, seg))}=VALUE")
        return _error(label, (*where, seg), f"unknown key '{seg}'", f"known keys: {', '.join(known)}")

    def apply(self, ov: Override) -> None:
        """Apply one override in place; record where it wrote (for blaming validation errors on it)."""
        label = ov.label
        if ov.is_sweep:
            raise _error(label, ov.path, "a sweep of values runs several trainings",
                         "run it with --multirun, or search it with specml tune")
        part, rel, prefix = self.part_for(ov.path, label)
        node: Any = part.data
        types_ = _schema(part.name)
        where: tuple[str, ...] = prefix
        loc: list[str | int] = list(part.at)
        create = ov.op in ("add", "force")
        for seg in rel[:-1]:
            node, key, types_, created = self._step(node, seg, types_, where, label, create)
            where, loc = (*where, seg), [*loc, key]
            if created:   # a section the override made: its missing fields are the override's doing
                self._record(part, tuple(loc), label, where)
        last = rel[-1]
        target = (*where, last)
        if isinstance(node, list):
            index = self._index(node, last, where, label)
            if ov.op == "delete":
                if index is None:
                    raise self._no_item(node, last, where, label)
                self._check_delete(node[index], ov, target)
                del node[index]
            elif index is None and ov.op in ("add", "force"):
                value = copy.deepcopy(ov.value)
                if not isinstance(value, dict):
                    raise _error(label, target, "a new item of a named list is a mapping", f"+{ov.key}={{...}}")
                value.setdefault("name", last)
                node.append(value)
                self._record(part, (*loc, len(node) - 1), label, target)
            elif index is None:
                raise self._no_item(node, last, where, label)
            elif ov.op == "add":
                raise _error(label, target, "is already there", f"change it with {ov.key}=VALUE (or ++{ov.key}=...)")
            else:
                node[index] = copy.deepcopy(ov.value)
                self._record(part, (*loc, index), label, target)
            return
        if not isinstance(node, dict):
            raise _error(label, where, f"is {node!r}, not a mapping: '{last}' cannot be set inside it")
        if ov.op == "delete":
            if last not in node:
                raise self._no_key(node, last, types_, where, label) if did_you_mean(last, map(str, node)) else \
                    _error(label, target, "is not set, nothing to delete")
            self._check_delete(node[last], ov, target)
            del node[last]
            self._record(part, (*loc, last), label, target)
            return
        if ov.op == "add" and last in node:
            raise _error(label, target, f"is already set (to {node[last]!r})",
                         f"change it with {ov.key}=VALUE, or ++{ov.key}=VALUE")
        if ov.op == "set" and last not in node and last not in _fields(types_):
            raise self._no_key(node, last, types_, where, label)
        node[last] = copy.deepcopy(ov.value)
        self._record(part, (*loc, last), label, target)

    @staticmethod
    def _check_delete(current: Any, ov: Override, target: tuple) -> None:
        if ov.has_value and ov.value is not None and current != ov.value:
            raise _error(ov.label, target, f"is {current!r}, not {ov.value!r}: not deleted")

    def _record(self, part: _Part, loc: Loc, label: str, target: tuple) -> None:
        self.files[part.file].blame[tuple(loc)] = (label, tuple(target))

    # -- presets -----------------------------------------------------------------------------------

    def merge_preset(self, preset: dict, label: str) -> None:
        """Merge a preset (a partial namespace) into the parts it names; a component whose ``type``
        changes is replaced, not merged (a cosine scheduler does not keep a plateau scheduler's params)."""
        if "estimator" in self.parts:
            self._merge(self.parts["estimator"], self.parts["estimator"].data, preset, (), label, ())
            return
        grouped: dict[str, dict] = {}
        for key, value in preset.items():
            owner = key if key in ROOTS else _SHORT.get(key)
            if owner is None:
                raise _error(label, (key,), f"unknown key '{key}' in the preset",
                             "a preset has model: and/or trainer: sections")
            grouped.setdefault(owner, {}).update(value if key in ROOTS else {key: value})
        applied = [name for name in grouped if name in self.parts]
        if not applied:
            raise _error(label, (), f"the preset sets {' and '.join(grouped)} settings, and there is no such spec here")
        for name in applied:
            part = self.parts[name]
            self._merge(part, part.data, grouped[name], tuple(part.at), label, (name,))

    def _merge(self, part: _Part, into: dict, new: dict, loc: Loc, label: str, where: tuple) -> None:
        if not isinstance(new, dict):
            raise _error(label, where, f"expected a mapping in the preset, got {new!r}")
        for key, value in new.items():
            old = into.get(key)
            same_kind = not (isinstance(value, dict) and isinstance(old, dict) and "type" in value
                             and old.get("type") not in (None, value["type"]))
            if isinstance(value, dict) and isinstance(old, dict) and same_kind:
                self._merge(part, old, value, (*loc, key), label, (*where, key))
            else:
                into[key] = copy.deepcopy(value)
                self._record(part, (*loc, key), label, (*where, key))

    # -- ${...} references -------------------------------------------------------------------------

    def resolve(self) -> None:
        """Resolve ``${path}`` references with OmegaConf over the namespace (lists of named mappings
        are addressed by name: ``${model.graph.h1.params.out_features}``)."""
        if not any(_has_reference(f.data) for f in self.files.values()):
            return
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        if "estimator" in self.parts:
            view = {k: _by_name(v) for k, v in self.parts["estimator"].data.items()}
        else:
            view = {name: _by_name(_without_trainer(part)) for name, part in self.parts.items()}
        try:
            resolved = OmegaConf.to_container(OmegaConf.create(view), resolve=True)
        except OmegaConfBaseException as err:
            raise self._reference_error(err, view) from None
        for name, part in self.parts.items():
            _write_back(part.data, resolved if name == "estimator" else resolved[name])

    def _reference_error(self, err: Exception, view: dict) -> SpecError:
        key = str(getattr(err, "full_key", "") or "")
        path = tuple(p for p in re.split(r"[.\[\]]+", key) if p)
        part = self.parts.get("estimator") or self.parts.get(path[0] if path else "", None)
        inner = path if "estimator" in self.parts else path[1:]
        value = _get(view, path)
        ref = re.search(r"\$\{([^}]*)\}", str(value)) if isinstance(value, str) else None
        message = str(err).splitlines()[0]
        hint = None
        if ref:
            target = tuple(ref.group(1).strip().split("."))
            message = f"cannot resolve ${{{ref.group(1)}}}: {_missing(view, target) or message}"
            hint = _close(view, target)
        loc = (*(part.at if part else ()), *_file_loc(part.data if part else {}, inner))
        lines = self.files[part.file].lines if part else {}
        return SpecError([SpecIssue(loc, message, hint)]).with_file(part.file if part else None, lines)


def _has_reference(data: Any) -> bool:
    if isinstance(data, str):
        return "${" in data
    if isinstance(data, dict):
        return any(_has_reference(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_reference(v) for v in data)
    return False


def _without_trainer(part: _Part) -> dict:
    data = part.data
    if part.name == "model":
        return {k: v for k, v in data.items() if k not in ("training", "trainer")}
    return data


def _named(items: list) -> bool:
    names = [i.get("name") for i in items if isinstance(i, dict)]
    return bool(items) and len(names) == len(items) and all(isinstance(n, str) for n in names) \
        and len(set(names)) == len(names)


def _by_name(data: Any) -> Any:
    """A copy where each list of uniquely named mappings is a mapping by name (for ``${...}`` paths)."""
    if isinstance(data, dict):
        return {k: _by_name(v) for k, v in data.items()}
    if isinstance(data, list):
        if _named(data):
            return {i["name"]: _by_name(i) for i in data}
        return [_by_name(v) for v in data]
    return data


def _write_back(data: Any, resolved: Any) -> None:
    """Copy resolved values into ``data`` (same shape, named lists as mappings in ``resolved``)."""
    if isinstance(data, dict):
        for k in data:
            if k in resolved:
                if isinstance(data[k], dict | list):
                    _write_back(data[k], resolved[k])
                else:
                    data[k] = resolved[k]
    elif isinstance(data, list):
        items = list(resolved.values()) if isinstance(resolved, dict) else resolved
        for i, item in enumerate(items):
            if isinstance(data[i], dict | list):
                _write_back(data[i], item)
            else:
                data[i] = item


def _file_loc(data: Any, path: tuple) -> Loc:
    """A view path (named list items by name) as a file path (list items by index)."""
    out: list[str | int] = []
    node = data
    for part in path:
        if isinstance(node, list):
            index = next((i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == part),
                         int(part) if str(part).isdigit() else None)
            if index is None or index >= len(node):
                return (*out, *path[len(out):])
            out.append(index)
            node = node[index]
        elif isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        else:
            return (*out, *path[len(out):])
    return tuple(out)


def _get(view: Any, path: tuple) -> Any:
    node = view
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _missing(view: dict, target: tuple) -> str | None:
    node: Any = view
    for i, part in enumerate(target):
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        where = ".".join(target[:i]) or "the top level"
        return f"no key '{part}' in {where}"
    return None


def _close(view: dict, target: tuple) -> str | None:
    node: Any = view
    for part in target:
        if isinstance(node, dict) and part in node:
            node = node[part]
            continue
        hits = did_you_mean(part, map(str, node)) if isinstance(node, dict) else []
        return f"did you mean '{hits[0]}'?" if hits else None
    return None


# ----------------------------------------------------------------------------------------------
# the public entry points


class Overrides:
    """Override texts (and presets) to apply to a run's spec files.

    ``Overrides(texts)`` applies to the one file :func:`specml.spec.load_spec` reads;
    ``Overrides(texts, files=[model_file, trainer_file])`` reads the files as one namespace, so
    ``trainer.*`` overrides reach the trainer file and a ``${model...}`` reference in the trainer
    file sees the model spec. ``presets`` are preset names or paths (``--preset``).
    """

    def __init__(self, texts: Sequence[str] = (), *, presets: Sequence[str] = (),
                 files: Sequence[str | Path | None] = (), home: str | Path | None = None) -> None:
        self.texts = [str(t) for t in texts]
        self.presets = [str(p) for p in presets]
        self.home = home
        self.files = [str(f) for f in files if f is not None]
        self._edited: dict[str, _File] | None = None

    def __bool__(self) -> bool:
        return bool(self.texts or self.presets)

    @property
    def recorded(self) -> list[str]:
        """The overrides as a run records them (presets as ``+experiment=NAME``)."""
        return [*(f"+{PRESET_KEY}={p}" for p in self.presets), *self.texts]

    def _parsed(self) -> tuple[list[tuple[str, dict]], list[Override]]:
        from specml.spec.presets import load_preset

        items = parse_overrides(self.texts)
        names = [*self.presets, *(str(o.value) for o in items if o.path == (PRESET_KEY,) and o.op != "delete")]
        presets = [(n, load_preset(n, self.home)) for n in names]
        return presets, [o for o in items if o.path != (PRESET_KEY,)]

    def edit(self, files: list[_File]) -> None:
        """Apply presets, overrides and references to these files' data, in place."""
        space = _Namespace(files)
        presets, items = self._parsed() if self else ([], [])
        for name, preset in presets:
            space.merge_preset(preset, f"preset '{name}'")
        for ov in items:
            space.apply(ov)
        space.resolve()

    def check(self) -> None:
        """Apply to the ``files`` now: a :class:`SpecError` for a bad override or preset, said once."""
        if self.files and self._edited is None:
            from specml.spec.yaml_io import read_yaml

            bound = [_File(f, *read_yaml(f)) for f in self.files]
            self.edit(bound)
            self._edited = {f.key: f for f in bound}

    def for_file(self, data: Any, file: str | None, lines: dict[Loc, int] | None = None) -> Edited:
        """The file's data after the overrides (its own, or read together with the other ``files``)."""
        if file is not None and file in self.files:
            self.check()
            done = self._edited[file]
            return Edited(done.data, done.blame)
        one = _File(file or "<spec>", copy.deepcopy(data), lines or {})
        self.edit([one])
        return Edited(one.data, one.blame)


@dataclass
class Edited:
    """A file's data after overrides, and which of its places an override or preset wrote."""

    data: Any
    blame: dict[Loc, tuple[str, tuple]] = field(default_factory=dict)

    def blamed(self, err: SpecError) -> SpecError:
        """``err`` with each issue in a place an override (or preset) wrote reported against it."""
        if not self.blame:
            return err
        out = []
        for issue in err.issues:
            hit = next(((loc, who) for loc, who in sorted(self.blame.items(), key=lambda kv: -len(kv[0]))
                        if tuple(issue.loc[:len(loc)]) == loc), None)
            if hit is None:
                out.append(issue)
                continue
            loc, (label, path) = hit
            out.append(SpecIssue((*path, *issue.loc[len(loc):]), issue.message, issue.hint, label))
        return SpecError(out)


def apply_overrides(data: Any, overrides: Overrides | Sequence[str] | None, file: str | None,
                    lines: dict[Loc, int] | None = None) -> Edited:
    """What :func:`specml.spec.load_spec` validates: ``data`` after overrides and ``${...}`` references."""
    if overrides is None or (not isinstance(overrides, Overrides) and not overrides):
        if not _has_reference(data):
            return Edited(data)
        overrides = Overrides()
    elif not isinstance(overrides, Overrides):
        overrides = Overrides(list(overrides))
    return overrides.for_file(data, file, lines)


def resolved_namespace(files: Sequence[str | Path], overrides: Overrides | None = None) -> dict:
    """The specs of ``files`` after overrides and references, as one mapping ``{model:, trainer:}``
    (or the estimator spec): what ``specml describe --resolved`` prints."""
    from specml.spec.yaml_io import read_yaml

    ov = overrides or Overrides()
    bound = [_File(str(f), *read_yaml(f)) for f in files]
    ov.edit(bound)
    parts = _Namespace(bound).parts
    if "estimator" in parts:
        return parts["estimator"].data
    return {name: _without_trainer(part) for name, part in parts.items()}


def format_value(value: Any) -> str:
    """``value`` as an override's value text that parses back to the same value (strings quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if not isinstance(value, float) or value == value and abs(value) != float("inf") \
            else ("nan" if value != value else "inf" if value > 0 else "-inf")
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    text = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, str(value)).replace("'", "\\'")
    return f"'{text}'"


def override_text(path: str, value: Any, op: str = "") -> str:
    """``[op]path=value`` for a value (``op``: '', '+' or '++')."""
    return f"{op}{path}={format_value(value)}"
