"""The allow-list: the only names a spec may resolve to a Python object.

A spec names components by dotted path, but a dotted path is never imported. It is looked up in
tables built from torch's own namespaces, specml's layers and registered plugins:

- ``torch.nn.<Module>``            public ``torch.nn.Module`` subclasses (not containers);
- ``torch.nn.functional.<fn>``     public functions of ``torch.nn.functional``;
- ``torch.<op>``                   tensor ops (ATen's ``torch._C._VariableFunctions`` and
                                   ``torch.functional``), without ``from_file``, which reads files;
- ``specml.layers.<Layer>``        specml's own layers;
- a plugin name                    from the ``specml.layers`` entry-point group (see docs/plugins.md).

``os.system``, ``builtins.eval``, ``subprocess.run`` and every other path are refused.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from specml.errors import SpecmlError
from specml.spec.errors import did_you_mean

PLUGIN_GROUP = "specml.layers"
NAMESPACES = ("torch.nn.", "torch.nn.functional.", "torch.", "specml.layers.")
_CONTAINERS = {"Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Sequential", "Container"}
_DENIED_OPS = {"from_file"}
_F_MODULES = {"torch.nn.functional", "torch", "torch._C._nn"}
#: functions whose first argument is a sequence of tensors: a list of inputs is passed as that sequence
SEQUENCE_FIRST = {"cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack",
                  "row_stack"}

Kind = Literal["module", "function"]


@dataclass(frozen=True)
class Resolved:
    """What a spec's ``type:`` resolves to."""

    name: str
    kind: Kind
    target: Any


class NotAllowed(SpecmlError, LookupError):
    """A type name that does not resolve; ``hint`` holds a "did you mean" or the rule."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@cache
def _tables() -> dict[str, Resolved]:
    from specml.graph.layers import LAYERS

    table: dict[str, Resolved] = {}
    for name in dir(nn):
        obj = getattr(nn, name)
        if (not name.startswith("_") and inspect.isclass(obj) and issubclass(obj, nn.Module)
                and name not in _CONTAINERS):
            table[f"torch.nn.{name}"] = Resolved(f"torch.nn.{name}", "module", obj)
    for name in dir(F):
        obj = getattr(F, name)
        if (not name.startswith("_") and callable(obj) and not inspect.isclass(obj)
                and not inspect.ismodule(obj) and getattr(obj, "__module__", None) in _F_MODULES):
            table[f"torch.nn.functional.{name}"] = Resolved(f"torch.nn.functional.{name}", "function", obj)
    ops = {n for n in dir(torch._C._VariableFunctions) if not n.startswith("_")}
    ops |= set(torch.functional.__all__)
    for name in sorted(ops - _DENIED_OPS):
        obj = getattr(torch, name, None)
        if obj is not None and callable(obj) and not inspect.isclass(obj):
            table[f"torch.{name}"] = Resolved(f"torch.{name}", "function", obj)
    for name, cls in LAYERS.items():
        table[f"specml.layers.{name}"] = Resolved(f"specml.layers.{name}", "module", cls)
    return table


def _in_working_directory(ep) -> bool:
    """Whether an entry point comes from a distribution found in the current folder (``python -m`` and
    ``python -c`` put it on the import path): such a folder is where a user stands, not an install."""
    location = getattr(getattr(ep, "dist", None), "_path", None)
    if location is None:
        return False
    try:
        return Path(location).resolve().parent == Path.cwd().resolve()
    except OSError:
        return True


@cache
def plugins() -> dict[str, Resolved]:
    """Layers registered by installed packages under the ``specml.layers`` entry-point group."""
    found: dict[str, Resolved] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        if _in_working_directory(ep):
            continue  # a *.dist-info lying where the user stands is not an installed distribution
        if ep.name.startswith(NAMESPACES) or ep.name in ("arc.stack",) or ep.name.startswith("module."):
            continue  # a plugin may not shadow torch or specml names
        obj = ep.load()
        kind: Kind = "module" if inspect.isclass(obj) and issubclass(obj, nn.Module) else "function"
        if kind == "function" and not callable(obj):
            continue
        found[ep.name] = Resolved(ep.name, kind, obj)
    return found


def all_names() -> list[str]:
    return [*_tables(), *plugins()]


def resolve(type_name: str) -> Resolved:
    """Look ``type_name`` up in the allow-list; raise :class:`NotAllowed` with a hint otherwise."""
    if not isinstance(type_name, str):
        raise NotAllowed(f"a type must be a string, got {type_name!r}")
    table = _tables()
    if type_name in table:
        return table[type_name]
    extra = plugins()
    if type_name in extra:
        return extra[type_name]
    names = list(table) + list(extra)
    exists = _exists_in_torch(type_name)
    if exists:
        raise NotAllowed(f"type '{type_name}' is not allowed", exists)
    if type_name.startswith(NAMESPACES):
        close = did_you_mean(type_name, names)
        raise NotAllowed(f"unknown type '{type_name}'", f"did you mean '{close[0]}'?" if close else None)
    # outside the namespaces: suggest only what is clearly meant (nn.Linear, F.relu, troch.nn.Linear)
    last = type_name.rsplit(".", 1)[-1]
    same_last = [n for n in names if n.rsplit(".", 1)[-1] == last]
    close = did_you_mean(type_name, same_last) or same_last[:1] or did_you_mean(type_name, names, cutoff=0.85)
    hint = f"did you mean '{close[0]}'?" if close else None
    rule = ("a spec may name torch.nn.*, torch.nn.functional.*, torch.* tensor ops, specml.layers.*, "
            "module.<Name>, arc.stack or a registered plugin")
    raise NotAllowed(f"type '{type_name}' is not allowed", f"{hint} {rule}" if hint else rule)


def _exists_in_torch(type_name: str) -> str | None:
    """Why a name that torch has (``torch.load``, ``torch.nn.Module``) is still refused, or None."""
    for prefix, namespace, meaning in (("torch.nn.functional.", F, "functions of torch.nn.functional"),
                                       ("torch.nn.", nn, "layer classes (torch.nn.Module subclasses, not containers)"),
                                       ("torch.", torch, "tensor ops")):
        if type_name.startswith(prefix):
            rest = type_name[len(prefix):]
            head = rest.split(".", 1)[0]
            if head in dir(namespace):
                return f"in a spec, {prefix}* means {meaning}; '{type_name}' is not one"
            return None
    return None


def loss_names() -> list[str]:
    """Allow-listed loss types: ``torch.nn.*Loss`` classes and ``torch.nn.functional`` loss functions."""
    return [n for n, r in _tables().items() if _is_loss(n, r)]


def _is_loss(name: str, r: Resolved) -> bool:
    short = name.rsplit(".", 1)[-1]
    if r.kind == "module":
        return short.endswith("Loss")
    return name.startswith("torch.nn.functional.") and (
        short.endswith("_loss") or short in {"binary_cross_entropy", "binary_cross_entropy_with_logits",
                                            "cross_entropy", "kl_div", "nll_loss"})


def resolve_loss(type_name: str) -> Resolved:
    """Resolve a loss type; short names (``BCEWithLogitsLoss``, ``mse_loss``) are accepted."""
    names = loss_names()
    if type_name in names:
        return _tables()[type_name]
    by_short = {n.rsplit(".", 1)[-1]: n for n in names}
    if type_name in by_short:
        return _tables()[by_short[type_name]]
    close = did_you_mean(type_name, names) or [by_short[c] for c in did_you_mean(type_name, by_short)]
    hint = f"did you mean '{close[0]}'?" if close else "use a torch.nn.*Loss class or a torch.nn.functional loss"
    if type_name in _tables() or type_name in plugins():
        raise NotAllowed(f"'{type_name}' is not a loss function", hint)
    raise NotAllowed(f"unknown loss type '{type_name}'", hint)


def signature_params(target: Any) -> tuple[set[str], bool] | None:
    """(parameter names, accepts **kwargs) of a callable, or None where Python cannot tell."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    names = {p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return names, var_kw
