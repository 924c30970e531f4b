"""Optimizers and LR schedulers from a trainer spec: resolve, check, build.

Only classes of ``torch.optim`` and ``torch.optim.lr_scheduler`` resolve. Checking a spec compares
``params`` with the class's signature, and builds the optimizer (and scheduler) over a dummy parameter
only when there are values to check (``params`` given, or a scheduler): a bad entry (an unknown keyword,
``betas: [0.9]``) is found when the spec is validated, not at the first training step, while a plain
``{type: Adam, lr: ...}`` costs no construction (the first one imports ``torch._dynamo``, about a second).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from functools import cache

import torch

from specml.spec.errors import IssueList, did_you_mean, suggestion
from specml.spec.metrics import METRICS, check_monitor
from specml.spec.trainer import DEFAULT_MONITOR, OptimizerSpec, SchedulerSpec, TrainerSpec

#: schedulers that wrap other schedulers or need a Python callable cannot come from YAML
_UNBUILDABLE = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler"}
PLATEAU = "ReduceLROnPlateau"


@cache
def optimizer_classes() -> dict[str, type]:
    return {n: c for n, c in vars(torch.optim).items()
            if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer
            and not n.startswith("_")}


@cache
def scheduler_classes() -> dict[str, type]:
    sched = torch.optim.lr_scheduler
    base = getattr(sched, "LRScheduler", None) or sched._LRScheduler
    return {n: c for n, c in vars(sched).items()
            if inspect.isclass(c) and not n.startswith("_") and c is not base
            and (issubclass(c, base) or n == PLATEAU)}


def _lookup(type_name: str, prefix: str, table: dict[str, type]) -> tuple[str, type] | str:
    """(canonical name, class), or an error hint. ``Adam``, ``adam``, ``torch.optim.Adam`` all resolve."""
    short = type_name[len(prefix):] if type_name.startswith(prefix) else type_name
    if short in table:
        return prefix + short, table[short]
    lowered = {n.lower(): n for n in table}
    if "." not in short and short.lower() in lowered:
        name = lowered[short.lower()]
        return prefix + name, table[name]
    hits = did_you_mean(short, table)
    if hits:
        return f"did you mean '{prefix}{hits[0]}'?"
    return f"one of: {', '.join(prefix + n for n in sorted(table))}"


def resolve_optimizer(type_name: str) -> tuple[str, type]:
    found = _lookup(type_name, "torch.optim.", optimizer_classes())
    if isinstance(found, str):
        raise LookupError(f"'{type_name}' is not a torch.optim optimizer ({found})")
    return found


def resolve_scheduler(type_name: str) -> tuple[str, type]:
    found = _lookup(type_name, "torch.optim.lr_scheduler.", scheduler_classes())
    if isinstance(found, str):
        raise LookupError(f"'{type_name}' is not a torch.optim.lr_scheduler scheduler ({found})")
    return found


def build_optimizer(spec: OptimizerSpec, parameters: Iterable, *, fuse: bool = True) -> torch.optim.Optimizer:
    """The spec's optimizer over ``parameters``. Unless the spec says ``foreach`` or ``fused``, it gets the fastest
    update torch has for it: ``fused=True`` where torch has a fused kernel for the optimizer and the parameters'
    device (Adam, AdamW, SGD and Adagrad on CPU and CUDA: one kernel per step, about half the step time of the
    loop on CPU), else ``foreach=True`` (one multi-tensor update instead of a Python loop over the parameters,
    which torch does by default only on CUDA). The algorithm is the same; a fused update rounds differently
    in the last bits from torch's default loop, so ``params: {fused: false}`` gives torch's default path.
    ``fuse=False``: never fused (a model with sparse gradients, which fused kernels refuse at the first step)."""
    _, cls = resolve_optimizer(spec.type)
    params = dict(spec.params)
    if not {"foreach", "fused"} & params.keys():
        accepted = inspect.signature(cls).parameters
        if fuse and "fused" in accepted:
            parameters = list(parameters)
            try:
                return cls(parameters, lr=spec.lr, fused=True, **params)
            except (RuntimeError, ValueError):  # no fused kernel for this device, dtype or setting
                pass
        if "foreach" in accepted:
            params["foreach"] = True
    return cls(parameters, lr=spec.lr, **params)


def has_sparse_gradients(model: torch.nn.Module) -> bool:
    """True when a module of ``model`` makes sparse gradients (``nn.Embedding(sparse=True)``)."""
    return any(getattr(m, "sparse", False) is True for m in model.modules())


def build_scheduler(spec: SchedulerSpec, optimizer: torch.optim.Optimizer):
    _, cls = resolve_scheduler(spec.type)
    return cls(optimizer, **spec.params)


def _unknown_params(cls: type, params: dict, skip: set[str]) -> list[tuple[str, str | None]]:
    sig = inspect.signature(cls)
    if any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        return []
    names = {p for p in sig.parameters if p not in skip}
    return [(k, suggestion(k, names) or f"accepted: {', '.join(sorted(names))}") for k in params if k not in names]


def check_trainer(spec: TrainerSpec) -> IssueList:
    """The rules of a trainer spec that need torch, plus cross-field rules. Every issue has a path."""
    issues = IssueList()
    optimizer = None
    try:
        name, cls = resolve_optimizer(spec.optimizer.type)
    except LookupError as exc:
        issues.add(("optimizer", "type"), str(exc).split(" (")[0], str(exc).partition(" (")[2].rstrip(")") or None)
    else:
        spec.optimizer.type = name
        bad = _unknown_params(cls, spec.optimizer.params, {"self", "params", "lr"})
        if "lr" in spec.optimizer.params:
            bad.append(("lr", "write the learning rate as optimizer.lr"))
        for key, hint in bad:
            issues.add(("optimizer", "params", key), f"{name} has no parameter '{key}'", hint)
        if not bad and (spec.optimizer.params or spec.scheduler is not None):  # values to check: build it
            try:
                optimizer = cls([torch.nn.Parameter(torch.zeros(1))], lr=spec.optimizer.lr, **spec.optimizer.params)
            except Exception as exc:
                issues.add(("optimizer", "params"), f"{name} rejects these params: {exc}")

    cfg = spec.config
    if cfg.metrics:
        for i, metric in enumerate(cfg.metrics):
            if metric not in METRICS:
                issues.add(("config", "metrics", i), f"unknown metric '{metric}'",
                           suggestion(metric, METRICS) or f"one of: {', '.join(METRICS)}")
    hint = check_monitor(cfg.early_stopping_monitor)
    if hint:
        issues.add(("config", "early_stopping_monitor"), f"unknown metric '{cfg.early_stopping_monitor}'", hint)
    if cfg.validation_split == 0 and cfg.early_stopping_patience and cfg.early_stopping_monitor.startswith("val_"):
        issues.add(("config", "early_stopping_monitor"),
                   f"early stopping watches {cfg.early_stopping_monitor} but validation_split is 0",
                   "set validation_split > 0 or monitor a train_ metric")

    if spec.scheduler is not None:
        _check_scheduler(spec, optimizer, issues)
    return issues


def _check_scheduler(spec: TrainerSpec, optimizer, issues: IssueList) -> None:
    sched = spec.scheduler
    try:
        name, cls = resolve_scheduler(sched.type)
    except LookupError as exc:
        issues.add(("scheduler", "type"), str(exc).split(" (")[0], str(exc).partition(" (")[2].rstrip(")") or None)
        return
    short = name.rsplit(".", 1)[-1]
    if short in _UNBUILDABLE:
        issues.add(("scheduler", "type"), f"{name} needs Python callables or other schedulers, which a YAML "
                                          "spec cannot hold", "use StepLR, MultiStepLR, ExponentialLR, "
                                                              "CosineAnnealingLR, OneCycleLR or ReduceLROnPlateau")
        return
    sched.type = name
    if short == PLATEAU:
        monitor = sched.monitor or DEFAULT_MONITOR
        hint = check_monitor(monitor)
        if hint:
            issues.add(("scheduler", "monitor"), f"unknown metric '{monitor}'", hint)
        if sched.interval == "step":
            issues.add(("scheduler", "interval"), "ReduceLROnPlateau steps on a metric, once per epoch",
                       "write interval: epoch")
    elif sched.monitor is not None:
        issues.add(("scheduler", "monitor"), f"only ReduceLROnPlateau watches a metric; {short} does not",
                   "remove monitor")
    bad = _unknown_params(cls, sched.params, {"self", "optimizer"})
    for key, hint in bad:
        issues.add(("scheduler", "params", key), f"{name} has no parameter '{key}'", hint)
    if bad or optimizer is None:
        return
    try:
        scheduler = cls(optimizer, **sched.params)
    except Exception as exc:
        issues.add(("scheduler", "params"), f"{name} cannot be built: {_first_line(exc)}")
        return
    try:  # some params are only read when stepping (CosineAnnealingLR's T_max)
        for _ in range(2):
            optimizer.step()
            scheduler.step(1.0) if short == PLATEAU else scheduler.step()
    except Exception as exc:
        issues.add(("scheduler", "params"), f"{name} fails when stepped: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
