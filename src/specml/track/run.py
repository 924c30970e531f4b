"""One training run's directory and the trackers that fill it.

    <home>/runs/<YYYYmmdd-HHMMSS>_<name>/
        specs/model.yaml, specs/trainer.yaml   the exact spec files
        specs/resolved.json                    the specs after normalisation (what ran), for diffs
        overrides.json                         CLI overrides (--target, --device, ...)
        facts/events.jsonl, facts/scalars.csv  see docs/tracking.md
        figures/*.png                          curves (and evaluation figures)
        tensorboard/                           TensorBoard event files
        checkpoints/                           best / last / periodic checkpoints
        stdout.log                             the run's console lines, plain text

``<home>/models/<name>/run.json`` points to the model's latest run from the moment it starts, so a
resume finds its checkpoints. The registry records the run (and its lineage) when it can; a registry
that fails never stops a training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specml.artifact import ModelArtifact
from specml.data.files import atomic_write_json, atomic_write_text, stamped_dir
from specml.home import home_folder


def runs_dir(home: str | Path | None = None) -> Path:
    return home_folder("runs", home)


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def specs(self) -> Path:
        return self.path / "specs"

    @property
    def facts(self) -> Path:
        return self.path / "facts"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def stdout(self) -> Path:
        return self.path / "stdout.log"

    @staticmethod
    def create(name: str, home: str | Path | None = None) -> RunDir:
        """A new, empty run directory ``runs/<UTC timestamp>_<name>`` (a suffix keeps it unique)."""
        return RunDir(stamped_dir(runs_dir(home), name))

    def write_specs(self, model_text: str, trainer_text: str | None, resolved: dict, overrides: dict) -> None:
        self.specs.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.specs / "model.yaml", model_text)
        if trainer_text is not None:
            atomic_write_text(self.specs / "trainer.yaml", trainer_text)
        atomic_write_json(self.specs / "resolved.json", resolved)
        atomic_write_json(self.path / "overrides.json", overrides)


def point_model_to_run(model_dir: Path, run: RunDir, status: str) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(model_dir / "run.json", {"run_id": run.run_id, "run_dir": str(run.path), "status": status})


def model_run(model_dir: Path) -> RunDir | None:
    """The run a model directory points to, or None."""
    path = ModelArtifact(model_dir).run_dir  # None unless run.json names a run under <home>/runs/
    return RunDir(path) if path is not None and path.is_dir() else None


# ----------------------------------------------------------------------------------------------
# comparing what a checkpoint was trained with to what a resume asks for


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: obj}


def changes(before: dict, after: dict, limit: int = 8) -> list[str]:
    """Field paths whose values differ, as ``path: old -> new`` lines (at most ``limit``, then a count)."""
    a, b = _flatten(before), _flatten(after)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            lines.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


# ----------------------------------------------------------------------------------------------
# the trackers


class StdoutLog:
    """The console's per-epoch lines, in plain text, appended to ``stdout.log`` (flushed each epoch)."""

    def __init__(self, path: Path) -> None:
        from rich.console import Console

        from specml.train.console import ConsoleLogger

        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed at train end
        self._logger = ConsoleLogger(progress=False, console=Console(file=self._file, highlight=False, width=120,
                                                                     force_terminal=False, no_color=True))

    def __getattr__(self, hook: str):
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        inner = getattr(self._logger, hook, None)

        def call(trainer, **kwargs):
            if inner is not None:
                inner(trainer, **kwargs)
            if not self._file.closed:
                self._file.flush()
            if hook in ("on_train_end", "on_exception"):
                self._file.close()

        return call

    def write(self, text: str) -> None:
        if not self._file.closed:
            self._file.write(text.rstrip("\n") + "\n")
            self._file.flush()


def trackers(run: RunDir, *, metadata: dict, histogram_every: int = 0, figures_every: int = 0,
             tensorboard: bool = True, run_id: str | None = None, plots: bool = True,
             keep_figures: bool = False) -> list:
    """The callbacks that write a run's facts, figures (``plots``), TensorBoard files and log."""
    from specml.track.facts import FactsWriter
    from specml.track.figures import FigureWriter

    cbs: list = [FactsWriter(run.facts, run_id=run_id or run.run_id, metadata=metadata)]
    if plots:
        cbs.append(FigureWriter(run.figures, every=figures_every, title=metadata.get("name"), keep=keep_figures,
                                deferred=True))
    cbs.append(StdoutLog(run.stdout))
    if tensorboard:
        from specml.track.tensorboard import TensorBoardLogger

        cbs.append(TensorBoardLogger(run.tensorboard, histogram_every=histogram_every))
    from specml.track.jobs import JobReporter

    reporter = JobReporter.from_env()
    if reporter is not None:
        cbs.append(reporter)
    return cbs


class RegistryRecorder:
    """Records the run in the registry (start, progress, end); registry trouble is a warning, never fatal."""

    def __init__(self, home: str | Path | None) -> None:
        self.registry = None
        self.run_id: str | None = None
        try:
            from specml.track.registry import Registry

            self.registry = Registry(home=home)
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"the registry is unavailable, the run is not recorded there: {err}", stacklevel=2)

    def _safe(self, fn) -> Any:
        if self.registry is None:
            return None
        try:
            return fn()
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"registry: {err}", stacklevel=3)
            return None

    def start(self, name: str, run: RunDir, **values: Any) -> None:
        import os

        from specml.track.process import process_start_time

        job = os.environ.get("SPECML_JOB_ID")
        if job:
            values["job_id"] = int(job)
        values["pid"], values["pid_started"] = os.getpid(), process_start_time(os.getpid())
        existing = None
        if self.registry is not None:
            try:
                existing = self.registry.get_run(run.run_id)
            except Exception:  # noqa: BLE001 - not there yet: a new run
                existing = None
        if existing is not None:  # a resumed run
            self.run_id = run.run_id
            self._safe(lambda: self.registry.update_run(run.run_id, status="running", **values))
            return
        started = self._safe(lambda: self.registry.start_run(name, run_id=run.run_id, run_dir=run.path, **values))
        self.run_id = started.run_id if started is not None else None

    def finish(self, status: str, error: str | None = None, **values: Any) -> None:
        if self.run_id is not None:
            self._safe(lambda: self.registry.finish_run(self.run_id, status, error=error, **values))
