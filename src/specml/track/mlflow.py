"""MLflow tracking of a training run: ``tracking: {mlflow: {uri, experiment}}`` in the trainer spec or
``specml train --mlflow URI``.

:class:`MlflowTracker` is an engine callback: at ``on_train_start`` it opens an MLflow run and logs the
resolved specs flattened as parameters (``model_spec.inputs.x.columns``, ``trainer_spec.config.epochs``,
...), at each ``on_epoch_end`` the epoch's metrics (step = epoch). :meth:`MlflowTracker.finish`, called
once the model is saved, logs the run directory and the model directory as artifacts and a pyfunc model
(``model/``) whose ``predict`` is specml's own scoring (:mod:`specml.track.mlflow_pyfunc`), then closes the run.
Everything goes through ``MlflowClient`` (no global active run). MLflow is an optional extra
(``pip install 'specml[mlflow]'``; ``mlflow-skinny`` is enough); without it, asking for it is an error.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from specml.errors import SpecmlError

EXTRA = "pip install 'specml[mlflow]' (or mlflow-skinny)"
_PARAM_CHARS = 6000  # MLflow's limit on a parameter value
_BATCH = 100  # MLflow's limit on params per log_batch


class MlflowError(SpecmlError, RuntimeError):
    """MLflow asked for but not installed, or a tracking URI it cannot use."""


def require_mlflow():
    try:
        import mlflow
    except ImportError:
        raise MlflowError(f"MLflow tracking needs the mlflow package: {EXTRA}") from None
    return mlflow


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``a.b.c`` keys; lists of scalars as JSON text, lists of dicts by index."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}"))
    elif prefix:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[prefix] = text[:_PARAM_CHARS]
    return out


def settings(trainer_spec: Any, uri: str | None) -> tuple[str, str] | None:
    """(uri, experiment) from ``--mlflow URI`` (wins) or the trainer spec's ``tracking.mlflow``; None: off."""
    section = getattr(getattr(trainer_spec, "tracking", None), "mlflow", None)
    if uri is None and section is None:
        return None
    return (uri or section.uri), (section.experiment if section is not None else "specml")


class MlflowTracker:
    """An engine callback logging one specml run to MLflow (see the module docstring)."""

    def __init__(self, uri: str, experiment: str = "specml", run_name: str | None = None) -> None:
        require_mlflow()
        from mlflow.tracking import MlflowClient

        self.uri, self.experiment, self.run_name = uri, experiment, run_name
        try:
            self.client = MlflowClient(tracking_uri=uri)
            self.client.get_experiment_by_name(experiment)  # opens the store: a bad URI is said now
        except Exception as err:  # noqa: BLE001 - a URI MLflow cannot use is the user's to fix
            first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            raise MlflowError(f"MLflow tracking URI {uri!r}: {first}") from None
        self.run_id: str | None = None

    def _open(self, params: dict[str, str]) -> None:
        if self.run_id is not None:
            return
        try:
            found = self.client.get_experiment_by_name(self.experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(
                self.experiment, artifact_location=artifact_location(self.uri))
            run = self.client.create_run(experiment_id, run_name=self.run_name, tags={"specml.model": self.run_name
                                                                                       or ""})
        except Exception as err:  # noqa: BLE001 - a URI MLflow cannot use is the user's to fix
            raise MlflowError(f"MLflow tracking URI {self.uri!r}: {type(err).__name__}: {err}") from None
        self.run_id = run.info.run_id
        self.log_params(params)

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:250], v) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + _BATCH])

    def log_metrics(self, values: dict[str, Any], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    # -- engine hooks ------------------------------------------------------------------------------

    def on_train_start(self, trainer: Any, **_: Any) -> None:
        self._open(flatten(getattr(trainer, "run_info", None) or {}))

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, **_: Any) -> None:
        self.log_metrics(logs, epoch)

    def on_exception(self, trainer: Any, **_: Any) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FAILED")

    # -- after the model is saved ------------------------------------------------------------------

    def finish(self, name: str, model_dir: Path, run_dir: Path | None, home: str | Path | None = None,
               best: dict | None = None) -> str:
        """Log the run and model directories, the best metrics and the pyfunc model; close the run."""
        if self.run_id is None:
            self._open({})
        if best:
            self.log_metrics({f"best_{k}": v for k, v in best.items()}, 0)
        if run_dir is not None and Path(run_dir).is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir), "specml_run")
        self.client.log_artifacts(self.run_id, str(model_dir), "specml_model")
        with tempfile.TemporaryDirectory() as tmp:
            package = Path(tmp) / "home"
            pack_home(name, Path(model_dir), run_dir, package)
            saved = Path(tmp) / "pyfunc"
            import warnings

            import mlflow.pyfunc

            from specml.track.mlflow_pyfunc import SpecmlPyfunc

            with warnings.catch_warnings():  # MLflow asks for type hints on predict (it takes a DataFrame)
                warnings.simplefilter("ignore")
                mlflow.pyfunc.save_model(str(saved), python_model=SpecmlPyfunc(),
                                         artifacts={"specml_home": str(package)}, pip_requirements=["specml"])
            self.client.log_artifacts(self.run_id, str(saved), "model")
        self.client.set_terminated(self.run_id, "FINISHED")
        return self.run_id


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a local SQLite store (``sqlite:///dir/x.db`` ->
    ``dir/mlruns``), not in whatever directory specml happens to run from (MLflow's default); else MLflow's."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlruns").as_uri()


def pack_home(name: str, model_dir: Path, run_dir: Path | None, home: Path) -> None:
    """A minimal specml home holding ``models/<name>/`` and its run's ``specs/`` (what loading needs)."""
    target = home / "models" / name
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("checkpoints"))
    if run_dir is not None and (Path(run_dir) / "specs").is_dir():
        shutil.copytree(Path(run_dir) / "specs", home / "runs" / Path(run_dir).name / "specs")
        (target / "run.json").write_text(json.dumps({"run_dir": Path(run_dir).name}), encoding="utf-8")


def tracker_for(uri: str | None, model_spec: Path | None, trainer_spec: Path | None,
                name: str, overrides: list[str] | None = None) -> MlflowTracker | None:
    """The tracker a ``specml train`` (or a ``specml tune`` trial) asks for (``--mlflow URI`` or
    ``tracking.mlflow``, after ``overrides``), or None."""
    trainer = None
    if model_spec is not None:
        import warnings

        from specml import preflight

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, trainer = preflight.check_spec_kinds(model_spec, trainer_spec, deep=False, overrides=overrides)
    chosen = settings(trainer, uri)
    if chosen is None:
        return None
    import os

    if int(os.environ.get("RANK", "0") or 0) != 0:  # under torchrun only rank 0 logs (as it alone writes the run)
        require_mlflow()
        return None
    return MlflowTracker(chosen[0], chosen[1], run_name=name)


def log_classical(uri: str, spec_path: Path, result: Any, experiment: str = "specml") -> str:
    """Log a trained classical model (:class:`specml.classical.train.ClassicalResult`) as one MLflow run:
    the estimator spec as parameters, its metrics per split, the model directory and a pyfunc model."""
    from specml.spec.yaml_io import read_yaml

    tracker = MlflowTracker(uri, experiment, run_name=result.name)
    spec = read_yaml(spec_path)[0] if spec_path else {}
    tracker._open(flatten({"estimator_spec": spec if isinstance(spec, dict) else {}}))
    tracker.log_metrics({f"{split}_{k}": v for split, values in (result.metrics or {}).items()
                         for k, v in (values or {}).items()}, 0)
    if result.directory is None:
        tracker.client.set_terminated(tracker.run_id, "FINISHED")
        return tracker.run_id
    return tracker.finish(result.name, Path(result.directory), None)
