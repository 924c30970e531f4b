"""The search space of ``specml tune``: a YAML file over override paths.

    metric: val_auc            # optional: the value a trial reports (default: the run's monitored metric)
    direction: maximize        # optional (default: from the metric: auc, accuracy up; loss, rmse down)
    params:
      trainer.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      trainer.config.batch_size: [32, 64, 128]                       # a list: categorical
      model.graph.hidden1.params.out_features: {type: int, low: 16, high: 128, step: 16}
      trainer.optimizer.type: {type: categorical, choices: [torch.optim.AdamW, torch.optim.SGD]}
      +trainer.optimizer.params.momentum:                             # + adds a key the spec does not have
        {type: float, low: 0.5, high: 0.99, when: {trainer.optimizer.type: torch.optim.SGD}}
      trainer.config.early_stopping_patience: choice(5, 10, 20)       # Hydra's sweep forms work too:
      trainer.optimizer.params.weight_decay: tag(log, interval(1e-6, 1e-2))   # range(), interval(), tag(log, ...)
    enqueue:                   # optional: trials to run first (e.g. the spec's own values)
      - {trainer.optimizer.lr: 0.001}

Each parameter is an override path (``+`` / ``++`` prefixes as in overrides); ``when`` makes it
conditional on earlier parameters' values (a value or a list of values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specml.spec.errors import Loc, SpecError, SpecIssue, suggestion
from specml.spec.overrides import override_text

KINDS = ("float", "int", "categorical")
_PARAM_KEYS = ("type", "low", "high", "log", "step", "choices", "when")
_TOP_KEYS = ("metric", "direction", "params", "enqueue")
DIRECTIONS = {"maximize": "maximize", "max": "maximize", "minimize": "minimize", "min": "minimize"}


@dataclass(frozen=True)
class Param:
    """One searched setting: an override path and its distribution."""

    path: str                          # without the + / ++ prefix (the Optuna parameter name)
    op: str                            # '', '+' or '++'
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    when: tuple[tuple[str, tuple], ...] = ()

    def active(self, values: dict[str, Any]) -> bool:
        """Whether the condition holds for the values sampled so far."""
        return all(name in values and values[name] in allowed for name, allowed in self.when)

    def suggest(self, trial: Any) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.path, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.path, self.low, self.high, log=self.log, step=self.step or 1)
        return trial.suggest_categorical(self.path, list(self.choices))

    def grid(self) -> list | None:
        """Every value (for the grid sampler), or None when the range is continuous."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step:
            n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
            return [self.low + i * self.step for i in range(n)]
        return None

    def override(self, value: Any) -> str:
        return override_text(self.path, value, self.op)


@dataclass
class Space:
    params: list[Param]
    metric: str | None = None
    direction: str | None = None
    enqueue: list[dict[str, Any]] = field(default_factory=list)
    file: str | None = None

    def sample(self, trial: Any) -> dict[str, Any]:
        """Suggest every active parameter from ``trial`` (in file order, so conditions see their parents)."""
        values: dict[str, Any] = {}
        for p in self.params:
            if p.active(values):
                values[p.path] = p.suggest(trial)
        return values

    def overrides(self, values: dict[str, Any]) -> list[str]:
        by_path = {p.path: p for p in self.params}
        return [by_path[k].override(v) for k, v in values.items() if k in by_path]

    def grid(self) -> dict[str, list]:
        """The grid sampler's search space; a :class:`SpecError` naming a continuous parameter."""
        out = {}
        for p in self.params:
            values = p.grid()
            if values is None:
                raise SpecError([SpecIssue(("params", p.path), "the grid sampler needs a finite set of values",
                                           "give the float a step, or list choices", self.file)])
            out[p.path] = values
        return out

    def example(self) -> dict[str, Any]:
        """One value per parameter (low or the first choice), conditions ignored: to check the paths."""
        return {p.path: p.choices[0] if p.kind == "categorical" else p.low for p in self.params}


# ----------------------------------------------------------------------------------------------
# reading


def load_space(path: str | Path) -> Space:
    """Read and check a search-space file; every problem in one :class:`SpecError` with lines."""
    from specml.spec.yaml_io import read_yaml

    data, lines = read_yaml(path)
    issues: list[SpecIssue] = []
    space = _space(data, issues, str(path))
    if issues:
        raise SpecError(list(dict.fromkeys(issues))).with_file(str(path), lines)
    return space


def parse_space(data: Any, file: str | None = None) -> Space:
    issues: list[SpecIssue] = []
    space = _space(data, issues, file)
    if issues:
        raise SpecError(issues).with_file(file)
    return space


def _space(data: Any, issues: list[SpecIssue], file: str | None) -> Space:
    def bad(loc: Loc, message: str, hint: str | None = None) -> None:
        issues.append(SpecIssue(tuple(loc), message, hint))

    if not isinstance(data, dict):
        bad((), "a search space is a mapping with params: (and optionally metric:, direction:, enqueue:)")
        return Space([], file=file)
    for key in data:
        if key not in _TOP_KEYS:
            bad((key,), f"unknown key '{key}'", suggestion(str(key), _TOP_KEYS) or f"keys: {', '.join(_TOP_KEYS)}")
    direction = data.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        bad(("direction",), f"expected maximize or minimize, got {direction!r}")
    metric = data.get("metric")
    if metric is not None and not isinstance(metric, str):
        bad(("metric",), f"expected a metric name such as val_loss, got {metric!r}")
    raw = data.get("params")
    params: list[Param] = []
    if not isinstance(raw, dict) or not raw:
        bad(("params",), "expected a mapping of override path -> distribution",
            "e.g. trainer.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}")
        raw = {}
    for key, spec in raw.items():
        param = _param(str(key), spec, ("params", key), bad, [p.path for p in params])
        if param is not None:
            params.append(param)
    names = [p.path for p in params]
    if len(set(names)) != len(names):
        bad(("params",), "a path is searched twice")
    enqueue = data.get("enqueue") or []
    if not isinstance(enqueue, list) or not all(isinstance(e, dict) for e in enqueue):
        bad(("enqueue",), "expected a list of mappings path -> value")
        enqueue = []
    for i, entry in enumerate(enqueue):
        for k in entry:
            if k not in names:
                bad(("enqueue", i, k), f"'{k}' is not a searched parameter", suggestion(str(k), names))
    return Space(params, metric, DIRECTIONS.get(direction) if direction else None, list(enqueue), file)


def _param(key: str, spec: Any, loc: Loc, bad, earlier: list[str]) -> Param | None:
    op = "++" if key.startswith("++") else "+" if key.startswith("+") else ""
    path = key[len(op):]
    if not path or path.startswith(("~", "+")) or " " in path:
        bad(loc, f"'{key}' is not an override path", "e.g. trainer.optimizer.lr (or +path to add a key)")
        return None
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    elif isinstance(spec, str):
        spec = _from_sweep(key, spec, loc, bad)
        if spec is None:
            return None
    if not isinstance(spec, dict):
        bad(loc, f"expected a distribution, got {spec!r}",
            "a mapping {type: float|int|categorical, ...}, a list of choices, or choice()/range()/interval()")
        return None
    for k in spec:
        if k not in _PARAM_KEYS:
            bad((*loc, k), f"unknown key '{k}'", suggestion(str(k), _PARAM_KEYS) or f"keys: {', '.join(_PARAM_KEYS)}")
    kind = spec.get("type")
    if kind not in KINDS:
        bad((*loc, "type"), f"expected one of {', '.join(KINDS)}, got {kind!r}", suggestion(str(kind), KINDS))
        return None
    when = _when(spec.get("when"), (*loc, "when"), bad, earlier)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            bad((*loc, "choices"), "a categorical parameter needs a non-empty list of choices")
            return None
        if not all(c is None or isinstance(c, str | int | float | bool) for c in choices):
            bad((*loc, "choices"), "choices are numbers, strings, booleans or null")
            return None
        return Param(path, op, kind, choices=tuple(choices), when=when)
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
    number = int if kind == "int" else (int, float)
    for name, value in (("low", low), ("high", high)):
        if not isinstance(value, number) or isinstance(value, bool):
            bad((*loc, name), f"expected {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
            return None
    if step is not None and (not isinstance(step, number) or isinstance(step, bool) or step <= 0):
        bad((*loc, "step"), f"expected a positive {'integer' if kind == 'int' else 'number'}, got {step!r}")
        return None
    if not isinstance(log, bool):
        bad((*loc, "log"), f"expected true or false, got {log!r}")
        return None
    if low > high:
        bad(loc, f"low ({low}) is above high ({high})")
        return None
    if log and low <= 0:
        bad((*loc, "low"), f"a log range needs low > 0, got {low}")
        return None
    if log and step is not None:
        bad((*loc, "step"), "a log range takes no step")
        return None
    return Param(path, op, kind, low, high, log, step, when=when)


def _when(spec: Any, loc: Loc, bad, earlier: list[str]) -> tuple[tuple[str, tuple], ...]:
    if spec is None:
        return ()
    if not isinstance(spec, dict) or not spec:
        bad(loc, "expected a mapping: earlier parameter -> value (or list of values)")
        return ()
    out = []
    for name, allowed in spec.items():
        name = str(name).lstrip("+")
        if name not in earlier:
            bad((*loc, name), f"'{name}' is not a parameter listed before this one",
                suggestion(name, earlier) or "a condition names an earlier parameter")
            continue
        out.append((name, tuple(allowed) if isinstance(allowed, list) else (allowed,)))
    return tuple(out)


def _from_sweep(key: str, text: str, loc: Loc, bad) -> dict | None:
    """Hydra's sweep forms: ``a,b`` / ``choice()`` -> categorical, ``range()`` -> int (or categorical),
    ``interval()`` -> float, ``tag(log, interval())`` -> log float, ``tag(int, interval())`` -> int."""
    from specml.spec.overrides import parse_override

    try:
        ov = parse_override(f"{key.lstrip('+')}={text}")
    except SpecError as err:
        bad(loc, err.issues[0].message, err.issues[0].hint)
        return None
    if ov.interval is not None:
        sweep = ov.interval
        tags = set(sweep.tags or ())
        kind = "int" if "int" in tags else "float"
        low, high = (int(sweep.start), int(sweep.end)) if kind == "int" else (sweep.start, sweep.end)
        return {"type": kind, "low": low, "high": high, "log": "log" in tags}
    if ov.sweep is None:
        bad(loc, f"'{text}' is one value, not a distribution",
            "choice(a, b), range(1, 10), interval(0.1, 1.0), tag(log, interval(1e-5, 1e-1)), or a list")
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_override(f"{key.lstrip('+')}={text}")
    values = list(parsed.sweep_iterator())
    if parsed.is_range_sweep() and len(values) > 1 and all(isinstance(v, int) for v in values):
        return {"type": "int", "low": values[0], "high": values[-1], "step": values[1] - values[0]}
    return {"type": "categorical", "choices": values}
