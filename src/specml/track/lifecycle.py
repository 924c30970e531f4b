"""A training run from its start to its end, as a context manager.

    with RunLifecycle(name, model_dir, home, run_info=..., ...) as life:
        ...                       # life.run, life.restore_from, life.callbacks(...)
        life.completed(epochs_done=..., best_metric=..., best_value=...)

Entering opens the run — a new ``runs/<time>_<name>/`` with the exact specs, or with ``resume`` the
model's last run, refused when its specs or data differ — points ``models/<name>/run.json`` at it
(``running``) and records it in the registry. :meth:`RunLifecycle.completed` (called once the trained
model is saved) starts drawing the figures in the background; leaving waits for them, then marks it
``completed``, or ``failed`` / ``interrupted`` (Ctrl-C) when the block raised, in both places.
Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from specml.track.run import RegistryRecorder, RunDir, changes, model_run, point_model_to_run, trackers
from specml.train.checkpoint import check_training_state, read_checkpoint_state
from specml.train.errors import TrainingError


class RunLifecycle:
    """Opens, tracks and closes one run of model ``name`` (see the module docstring).

    ``run_info``: what the run trains with (resolved specs, table, data fingerprint); it travels in every
    checkpoint and a resume must match it. ``registry``: values for the registry's run row.
    """

    def __init__(self, name: str, model_dir: Path, home: str | Path | None, *, run_info: dict, model_text: str,
                 trainer_text: str | None, overrides: dict, resume: bool = False, track: bool = True,
                 registry: dict[str, Any] | None = None) -> None:
        self.name, self.model_dir, self.home = name, Path(model_dir), home
        self.run_info, self.model_text, self.trainer_text, self.overrides = run_info, model_text, trainer_text, overrides
        self.resume, self.track, self.registry_values = resume, track, registry or {}
        self.run: RunDir | None = None
        self.restore_from: Path | None = None     # the checkpoint a resume continues from
        self.resumed_from: int | None = None      # its epoch
        self.epochs_done = 0
        self._recorder: RegistryRecorder | None = None
        self._final: dict[str, Any] = {}
        self._trackers: list = []

    def __enter__(self) -> RunLifecycle:
        self.run, self.restore_from, self.resumed_from = self._open()
        if self.restore_from is None:
            self.run.write_specs(self.model_text, self.trainer_text,
                                 {"model": self.run_info["model_spec"], "trainer": self.run_info["trainer_spec"]},
                                 self.overrides)
        point_model_to_run(self.model_dir, self.run, "running")
        if self.track:
            self._recorder = RegistryRecorder(self.home)
            self._recorder.start(self.name, self.run, model_dir=str(self.model_dir), **self.registry_values)
        return self

    def callbacks(self, metadata: dict, *, histogram_every: int = 0, figures_every: int = 0,
                  tensorboard: bool = True, plots: bool = True, keep_figures: bool = False) -> list:
        """The engine callbacks of this run: its trackers (when tracked) and the epoch counter."""
        tracked = (trackers(self.run, metadata=metadata, histogram_every=histogram_every,
                            figures_every=figures_every, tensorboard=tensorboard, plots=plots,
                            keep_figures=keep_figures) if self.track else [])
        self._trackers = tracked
        return [*tracked, _EpochCounter(self)]

    def completed(self, **values: Any) -> None:
        """Say how the run ended (epochs_done, best_metric, best_value) before leaving the block, once its
        result is saved: the deferred figures start drawing now, in the background."""
        self._final = values
        for tracker in self._trackers:
            if hasattr(tracker, "draw"):
                tracker.draw()

    def shared(self) -> dict[str, Any]:
        """What the other DDP ranks need to know about this run (see :class:`FollowerLifecycle`)."""
        return {"run": str(self.run.path), "resume": self.resume, "resumed_from": self.resumed_from,
                "restore_from": None if self.restore_from is None else str(self.restore_from)}

    def adopt(self, shared: dict[str, Any]) -> None:
        """Rank 0 keeps its own view."""

    @staticmethod
    def resumable(model_dir: Path) -> bool:
        """True when the model's last run has a checkpoint to continue from."""
        run = model_run(Path(model_dir))
        return run is not None and (run.checkpoints / "last.safetensors").is_file()

    def __exit__(self, kind, error, tb) -> bool:
        try:
            self._wait_trackers()
        except Exception as err:  # a figure that cannot be drawn fails the run, as before
            if error is None:
                self._close(err)
                raise
        return self._close(error)

    def _wait_trackers(self) -> None:
        trackers_, self._trackers = self._trackers, []
        for tracker in trackers_:
            if hasattr(tracker, "wait"):
                tracker.wait()

    def _close(self, error: BaseException | None) -> bool:
        if error is None:
            point_model_to_run(self.model_dir, self.run, "completed")
            if self._recorder is not None:
                self._recorder.finish("completed", **self._final)
            return False
        interrupted = isinstance(error, KeyboardInterrupt)
        point_model_to_run(self.model_dir, self.run, "interrupted" if interrupted else "failed")
        if self._recorder is not None:
            self._recorder.finish("cancelled" if interrupted else "failed", error=f"{type(error).__name__}: {error}",
                                  epochs_done=self.epochs_done)
        return False

    def _open(self) -> tuple[RunDir, Path | None, int | None]:
        """(run dir, checkpoint to restore or None, its epoch or None): a new run, or the model's last run."""
        if not self.resume:
            return RunDir.create(self.name, self.home), None, None
        run = model_run(self.model_dir)
        if run is None:
            raise TrainingError(f"--resume: model '{self.name}' has no run to resume under {self.model_dir}; "
                                "train it without --resume first")
        last = run.checkpoints / "last.safetensors"
        if not last.is_file():
            raise TrainingError(f"--resume: run {run.run_id} has no checkpoint (it stopped before its first epoch "
                                "ended); train again without --resume")
        state = check_training_state(read_checkpoint_state(last), last)
        diff = changes(state.get("run") or {}, self.run_info)
        if diff:
            raise TrainingError(f"--resume: run {run.run_id} was trained with other specs or data; changed since its "
                                "checkpoint:\n  " + "\n  ".join(diff) + "\nresume with the run's own specs "
                                f"({run.specs}) or train a new model")
        return run, last, int(state["epoch"])


class FollowerLifecycle:
    """The run as a DDP rank other than 0 sees it: rank 0's run directory and checkpoint (via
    :meth:`adopt`), and nothing written: no run directory, registry row, trackers or status."""

    def __init__(self) -> None:
        self.run: RunDir | None = None
        self.resume = False
        self.restore_from: Path | None = None
        self.resumed_from: int | None = None

    def __enter__(self) -> FollowerLifecycle:
        return self

    def __exit__(self, kind, error, tb) -> bool:
        return False

    def adopt(self, shared: dict[str, Any]) -> None:
        self.run, self.resume, self.resumed_from = RunDir(Path(shared["run"])), shared["resume"], shared["resumed_from"]
        self.restore_from = None if shared["restore_from"] is None else Path(shared["restore_from"])

    def callbacks(self, metadata: dict, **_: Any) -> list:
        return []

    def completed(self, **values: Any) -> None:
        pass


class _EpochCounter:
    """Keeps the lifecycle's count of finished epochs (what a failed run's registry row reports)."""

    def __init__(self, life: RunLifecycle) -> None:
        self._life = life

    def on_train_start(self, trainer: Any, **_: Any) -> None:
        self._life.epochs_done = trainer.epoch

    def on_epoch_end(self, trainer: Any, epoch: int, **_: Any) -> None:
        self._life.epochs_done = epoch
