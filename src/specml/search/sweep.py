"""Multirun: a grid of overrides trained as a sweep (``specml train ... --multirun``).

    specml train -m model.yaml -T trainer.yaml -t pima_train -n mlp --multirun \\
        optimizer.lr=1e-3,3e-3 config.batch_size=64,256 --jobs 2

Each override with several values (``a,b``, ``range(1,4)``, ``choice(a,b)``, as in Hydra) is a grid
axis; the points are their product, the first axis varying slowest. Every point is a normal
``specml train`` run as a background job (:mod:`specml.track.jobs`: ``specml jobs list`` shows them,
each has its log), named ``<name>-<i>``; at most ``jobs`` run at a time. A point that fails is
recorded with its error and the others go on. The sweep directory holds what ran and how it ended:

    <SPECML_HOME>/sweeps/<time>_<name>/sweep.json    settings, and per point its overrides, job, run, result
    <SPECML_HOME>/sweeps/<time>_<name>/summary.csv   the points ranked by the monitored metric
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specml.data.files import stamped_dir
from specml.errors import SpecmlError
from specml.home import specml_home


class SweepError(SpecmlError):
    """A sweep that cannot run (a bad grid) or be found."""


@dataclass
class SweepPoint:
    index: int
    name: str
    overrides: list[str]
    status: str = "pending"            # pending, running, completed, failed, cancelled
    job_id: int | None = None
    run_id: str | None = None
    run_dir: str | None = None
    metric: str | None = None
    value: float | None = None
    epochs: int | None = None
    seconds: float | None = None
    error: str | None = None
    log: str | None = None
    rank: int | None = None


@dataclass
class Sweep:
    sweep_id: str
    directory: str
    name: str
    command: list[str]
    axes: dict[str, list[str]]
    jobs: int
    points: list[SweepPoint] = field(default_factory=list)
    created_at: str = ""
    ended_at: str | None = None

    def save(self) -> None:
        from specml.data.files import atomic_write_json, atomic_write_text

        atomic_write_json(Path(self.directory) / "sweep.json", asdict(self))
        atomic_write_text(Path(self.directory) / "summary.csv", summary_csv(self))

    @classmethod
    def load(cls, path: Path) -> Sweep:
        data = json.loads((path / "sweep.json").read_text(encoding="utf-8"))
        points = [SweepPoint(**{k: v for k, v in p.items() if k in {f.name for f in fields(SweepPoint)}})
                  for p in data.pop("points", [])]
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}}, points=points)

    def ranked(self) -> list[SweepPoint]:
        """Completed points best first (by their monitored metric), then the others in order."""
        from specml.train.metrics import HIGHER_IS_BETTER, metric_of

        def key(p: SweepPoint) -> tuple:
            if p.status != "completed" or p.value is None:
                return (1, 0.0, p.index)
            up = HIGHER_IS_BETTER.get(metric_of(p.metric or "val_loss"), False)
            return (0, -p.value if up else p.value, p.index)

        return sorted(self.points, key=key)


# ----------------------------------------------------------------------------------------------
# the grid


def expand(overrides: list[str]) -> tuple[dict[str, list[str]], list[list[str]]]:
    """(axes: swept key -> its value texts, points: the override list of each grid point)."""
    from specml.spec.overrides import parse_overrides

    parsed = parse_overrides(overrides)
    choices: list[list[str]] = []
    axes: dict[str, list[str]] = {}
    for ov in parsed:
        if ov.interval is not None:
            raise SweepError(f"'{ov.text}': interval() is a continuous range; a grid needs values",
                             "list them (a,b,c), use range(), or search it with specml tune --space")
        if ov.sweep is not None:
            if ov.key in axes:
                raise SweepError(f"'{ov.key}' is swept twice")
            axes[ov.key] = list(ov.sweep)
            choices.append(list(ov.sweep))
        else:
            choices.append([ov.text])
    return axes, [list(point) for point in itertools.product(*choices)]


def sweeps_dir(home: str | Path | None = None) -> Path:
    return specml_home(home) / "sweeps"


def _create_dir(name: str, home: str | Path | None) -> Path:
    return stamped_dir(sweeps_dir(home), name)


# ----------------------------------------------------------------------------------------------
# running


def run_sweep(base: list[str], overrides: list[str], *, name: str, jobs: int = 1, home: str | Path | None = None,
              check: Callable[[list[str]], None] | None = None, echo: Callable[[str], None] | None = None,
              poll_s: float = 0.5) -> Sweep:
    """Train every grid point of ``overrides`` as ``specml <base> --name <name>-<i> <point overrides>``.

    ``base`` is the train command without name and overrides (``["train", "--model-spec", ...]``, paths
    absolute). ``check(point)`` may refuse a point before anything starts (a typo in a path).
    """
    from specml.track.jobs import start_background
    from specml.track.registry import Registry

    echo = echo or (lambda _text: None)
    if jobs < 1:
        raise SweepError(f"--jobs {jobs}: at least 1")
    axes, grid = expand(overrides)
    for point in grid if check is not None else []:
        check(point)   # a SpecError names the override at fault
    directory = _create_dir(name, home)
    sweep = Sweep(directory.name, str(directory), name, list(base), axes, jobs,
                  [SweepPoint(i, f"{name}-{i}", point) for i, point in enumerate(grid)],
                  created_at=datetime.now(UTC).isoformat(timespec="seconds"))
    sweep.save()
    echo(f"sweep {sweep.sweep_id}: {len(grid)} point(s), {min(jobs, len(grid))} at a time ({directory})")
    reg = Registry(home=home)
    waiting = list(sweep.points)
    running: list[SweepPoint] = []
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                point = waiting.pop(0)
                point.job_id = start_background([*base, "--name", point.name, *point.overrides], point.name, home,
                                                registry=reg)
                point.status = "running"
                point.log = reg.get_job(point.job_id).log_path
                running.append(point)
                sweep.save()
            time.sleep(poll_s)
            for point in [p for p in running if _finished(reg, p)]:
                running.remove(point)
                _record(reg, point, home)
                sweep.save()
                echo(describe_point(point))
    except KeyboardInterrupt:
        from specml.track.jobs import cancel

        for point in running:
            try:
                cancel(point.job_id, reg, grace=5.0)
            except SpecmlError:
                pass
            point.status, point.error = "cancelled", "the sweep was interrupted"
        for point in waiting:
            point.status = "cancelled"
        sweep.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
        _rank(sweep)
        sweep.save()
        raise
    sweep.ended_at = datetime.now(UTC).isoformat(timespec="seconds")
    _rank(sweep)
    sweep.save()
    return sweep


def _finished(reg: Any, point: SweepPoint) -> bool:
    from specml.track.jobs import refresh

    job = reg.get_job(point.job_id)
    if not job.finished:
        refresh(reg)
        job = reg.get_job(point.job_id)
    return job.finished


def _record(reg: Any, point: SweepPoint, home: str | Path | None) -> None:
    """The point's end from its job and its run (the registry), or the model's metadata (classical)."""
    job = reg.get_job(point.job_id)
    point.status = {"completed": "completed", "cancelled": "cancelled"}.get(job.status, "failed")
    point.seconds = job.duration_s
    point.error = job.error if point.status != "completed" else None
    point.run_id = job.run_id
    if job.run_id:
        run = reg.get_run(job.run_id)
        point.run_dir, point.metric, point.value, point.epochs = run.run_dir, run.best_metric, run.best_value, \
            run.epochs_done
        if point.status != "completed" and run.error and not point.error:
            point.error = run.error
    elif point.status == "completed":
        from specml.artifact import ModelArtifact

        meta = ModelArtifact.for_name(point.name, home).read_metadata()
        best = meta.get("best") or {}
        point.metric, point.value = best.get("metric"), best.get("value")


def _rank(sweep: Sweep) -> None:
    for rank, point in enumerate([p for p in sweep.ranked() if p.status == "completed" and p.value is not None], 1):
        point.rank = rank


def describe_point(point: SweepPoint) -> str:
    said = " ".join(point.overrides)
    if point.status == "completed":
        value = f"{point.metric} {point.value:.4f}" if point.value is not None else "no metric"
        return f"point {point.index} completed: {value} ({said})"
    return f"point {point.index} {point.status}: {point.error or ''} ({said})"


def summary_csv(sweep: Sweep) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "point", "name", "status", "metric", "value", "epochs", "seconds", "overrides",
                     "run_id", "job_id", "error"])
    for p in sweep.ranked():
        writer.writerow([p.rank, p.index, p.name, p.status, p.metric, p.value, p.epochs,
                         None if p.seconds is None else round(p.seconds, 2), " ".join(p.overrides), p.run_id,
                         p.job_id, p.error])
    return out.getvalue()


# ----------------------------------------------------------------------------------------------
# finding sweeps


def list_sweeps(home: str | Path | None = None) -> list[Sweep]:
    base = sweeps_dir(home)
    return [Sweep.load(p) for p in sorted(base.iterdir()) if (p / "sweep.json").is_file()] if base.is_dir() else []


def find_sweep(sweep_id: str, home: str | Path | None = None) -> Sweep:
    """A sweep by its id (the directory name), a unique prefix of it, or its name (the latest)."""
    from specml.spec.errors import suggestion

    sweeps = list_sweeps(home)
    exact = [s for s in sweeps if s.sweep_id == sweep_id]
    hits = exact or [s for s in sweeps if s.sweep_id.startswith(sweep_id)] or \
        [s for s in sweeps if s.name == sweep_id][-1:]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise SweepError(f"'{sweep_id}' matches {len(hits)} sweeps: {', '.join(s.sweep_id for s in hits)}")
    ids = [s.sweep_id for s in sweeps]
    raise SweepError(f"no sweep '{sweep_id}' in {sweeps_dir(home)}",
                     suggestion(sweep_id, ids + [s.name for s in sweeps]) or "see specml sweeps list")
