"""ML plans: what a table and a goal call for, written down before any training.

A plan holds the target and its balance, missing values, cardinalities, leakage suspects, the
recommended split and metric, the architecture, a training-time estimate and the compiled specs.
It is plain JSON, stored in the registry (``<home>/registry.sqlite``, table ``plans``) under a short
id, ``plan-1``, ``plan-2``, ... (:func:`save_plan`, :func:`load_plan`, :func:`list_plans`). Plans
written by earlier versions as ``<home>/plans/<plan_id>.json`` are still read.

Training-time estimate (a rough upper bound: early stopping usually ends sooner)::

    seconds = epochs * (batches_per_epoch * STEP_OVERHEAD_S + 6 * parameters * train_rows / CPU_FLOPS)

6 FLOPs per parameter per row cover the forward and backward pass of dense layers; the per-step
overhead dominates for small tabular models. The constants are for one CPU core.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specml.compile.build import Compiled, compile_spec
from specml.compile.errors import CompileError
from specml.compile.profile import TableProfile, profile_table
from specml.home import specml_home
from specml.spec.metrics import main_metric

__all__ = ["Plan", "estimate_seconds", "list_plan_entries", "list_plans", "load_plan", "make_plan", "plans_dir",
           "save_plan"]

STEP_OVERHEAD_S = 5e-4
CPU_FLOPS = 2e9
_LEGACY_ID = re.compile(r"^plan-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")  # plans stored as JSON files before the registry


@dataclass
class Plan:
    plan_id: str  # "" until saved
    created_at: str
    instruction: str
    table: str
    rows: int
    targets: list[str]
    task: str
    tasks: dict[str, str]
    balance: dict[str, dict]
    missing: dict[str, int]
    cardinality: dict[str, int]
    leakage: list[dict]
    split: dict[str, Any]
    metric: str
    architecture: str
    estimate: dict[str, Any]
    compiled: dict
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    profile: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> Plan:
        return Plan(**{k: d[k] for k in Plan.__dataclass_fields__ if k in d})

    def compiled_specs(self) -> Compiled:
        return Compiled.from_dict(self.compiled)


def plans_dir(home: str | Path | None = None) -> Path:
    """Where earlier versions wrote plans as JSON files (read-only now)."""
    return specml_home(home) / "plans"


def _count_parameters(model: dict) -> int:
    from specml.spec import load_spec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = load_spec(model, check=True)
    return int(sum(p.numel() for p in loaded.checked.model.parameters()))


def estimate_seconds(parameters: int, train_rows: int, epochs: int, batch_size: int) -> float:
    batches = math.ceil(train_rows / batch_size)
    return epochs * (batches * STEP_OVERHEAD_S + 6.0 * parameters * train_rows / CPU_FLOPS)


def _balance(profile: TableProfile, column: str, task: str) -> dict:
    col = profile.column(column)
    if task == "regression":
        return {"mean": col.mean, "std": col.std, "min": col.min, "max": col.max}
    counts = profile.value_counts(column) or []
    total = sum(n for _, n in counts) or 1
    ns = [n for _, n in counts]
    return {"counts": {str(v): n for v, n in counts}, "fractions": {str(v): round(n / total, 4) for v, n in counts},
            "minority_to_majority": round(min(ns) / max(ns), 4) if ns else None,
            "imbalanced": bool(ns and min(ns) / max(ns) < 0.2)}


def _split(profile: TableProfile, targets: list[str], tasks: dict[str, str]) -> dict:
    temporal = [c.name for c in profile.columns if c.kind == "temporal" and c.nulls == 0 and not c.constant]
    temporal += [c.name for c in profile.columns  # epoch seconds/ms or yyyymmdd numbers named like a time
                 if c.kind != "temporal" and c.timestamp_like() and c.nulls == 0 and not c.constant
                 and c.name not in targets]
    table = profile.table
    if temporal:
        col = temporal[0]
        return {"kind": "time", "column": col, "test_size": 0.2,
                "why": f"'{col}' is a date/time: test on the latest 20% of rows, as the model will be used",
                "command": f"specml data split {table} --test-size 0.2 --time-column {col}"}
    if len(targets) == 1 and tasks[targets[0]] != "regression":
        t = targets[0]
        return {"kind": "stratified", "column": t, "test_size": 0.2, "seed": 42,
                "why": f"classification: keep the class balance of '{t}' in both parts",
                "command": f"specml data split {table} --test-size 0.2 --stratify {t} --seed 42"}
    return {"kind": "random", "test_size": 0.2, "seed": 42,
            "why": "regression / several targets: a seeded random split",
            "command": f"specml data split {table} --test-size 0.2 --seed 42"}


def make_plan(instruction: str, workspace, table: str, *, name: str | None = None,
              compiled: Compiled | None = None) -> Plan:
    """Analyse ``table`` for the goal in ``instruction`` and compile its specs; not saved (see save_plan),
    so ``plan_id`` is empty."""
    profile = profile_table(workspace, table)
    if compiled is None:
        compiled = compile_spec(instruction, profile, name=name)
    targets = compiled.targets
    tasks = compiled.tasks or {t: compiled.task for t in targets}
    train_rows = int(profile.rows * 0.8 * (1 - compiled.trainer["config"].get("validation_split", 0.2)))
    params = _count_parameters(compiled.model)
    cfg = compiled.trainer["config"]
    seconds = estimate_seconds(params, train_rows, int(cfg["epochs"]), int(cfg["batch_size"]))
    now = datetime.now(UTC)
    metric = (main_metric(tasks[targets[0]])[0] if len(targets) == 1 else
              ", ".join(f"{t}: {main_metric(k)[0]}" for t, k in tasks.items()))
    return Plan(
        plan_id="", created_at=now.isoformat(timespec="seconds"),
        instruction=instruction, table=profile.table, rows=profile.rows, targets=targets, task=compiled.task,
        tasks=tasks, balance={t: _balance(profile, t, tasks[t]) for t in targets},
        missing={c.name: c.nulls for c in profile.columns if c.nulls},
        cardinality={c.name: c.distinct for c in profile.columns},
        leakage=[s.to_dict() for s in profile.leakage(targets)],
        split=_split(profile, targets, tasks), metric=metric, architecture=compiled.architecture,
        estimate={"seconds": round(seconds, 1), "parameters": params, "train_rows": train_rows,
                  "epochs": int(cfg["epochs"]), "batch_size": int(cfg["batch_size"]),
                  "rule": "epochs * (batches * 0.5 ms + 6 * parameters * rows / 2e9 FLOP/s); an upper bound, "
                          "early stopping usually ends sooner"},
        compiled=compiled.to_dict(), notes=list(compiled.notes), ignored=list(compiled.ignored),
        profile=profile.to_dict())


def _registry(home: str | Path | None):
    from specml.track.registry import Registry

    return Registry(home=home)


def save_plan(plan: Plan, home: str | Path | None = None) -> str:
    """Store the plan in the registry; its new id (``plan-<n>``), also set as ``plan.plan_id``."""
    with _registry(home) as reg:
        plan.plan_id = reg.save_plan(plan.to_dict())
    return plan.plan_id


def _legacy_ids(home: str | Path | None) -> list[str]:
    directory = plans_dir(home)
    return sorted(p.stem for p in directory.glob("plan-*.json") if _LEGACY_ID.match(p.stem)) \
        if directory.is_dir() else []


def list_plan_entries(home: str | Path | None = None) -> list:
    """The stored plans (:class:`specml.track.registry.PlanEntry`: id, instruction, table, created_at), oldest
    first; plans left as JSON files by earlier versions come first."""
    from specml.track.registry import PlanEntry

    legacy = []
    for plan_id in _legacy_ids(home):
        try:
            p = _read_legacy(plan_id, home)
            legacy.append(PlanEntry(plan_id, p.instruction, p.table, p.created_at))
        except CompileError:
            continue
    with _registry(home) as reg:
        return legacy + reg.list_plans()


def list_plans(home: str | Path | None = None) -> list[str]:
    """The stored plans' ids, oldest first."""
    return [e.plan_id for e in list_plan_entries(home)]


def _read_legacy(plan_id: str, home: str | Path | None) -> Plan:
    path = plans_dir(home) / f"{plan_id}.json"
    try:
        return Plan.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError) as err:
        raise CompileError(f"plan file {path} is unreadable: {err}") from None


def load_plan(plan_id: str, home: str | Path | None = None) -> Plan:
    """The stored plan ``plan_id`` (``plan-3`` or ``3``); CompileError naming the known ids (with "did you
    mean") if absent."""
    from specml.spec.errors import suggestion
    from specml.track.registry import RegistryError, plan_key

    plan_id = str(plan_id).strip()
    if _LEGACY_ID.match(plan_id) and (plans_dir(home) / f"{plan_id}.json").is_file():
        return _read_legacy(plan_id, home)
    with _registry(home) as reg:
        if plan_key(plan_id) is None:  # not of the form plan-<n>: say so, with the known ids
            known = list_plans(home)
            hint = suggestion(plan_id, known)
            listed = (f"the latest are {', '.join(known[-5:])}; see specml plan list" if known else
                      "there are no plans yet: specml plan --instruction \"...\" --table TABLE")
            raise CompileError(f"plan '{plan_id}' not found ({hint or listed}; plan ids look like plan-3)")
        try:
            body = reg.get_plan(plan_id)
        except RegistryError as err:
            raise CompileError(str(err)) from None
    try:
        return Plan.from_dict(body)
    except (TypeError, KeyError) as err:
        raise CompileError(f"plan '{plan_id}' in {reg.path} is unreadable: {err}") from None
