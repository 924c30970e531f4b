"""A trained model's directory, ``<home>/models/<name>/``::

    model.safetensors                  the best weights
    run.json                           the latest run (``runs/<time>_<name>/``): its specs/ holds the exact
                                       spec files, its checkpoints/ last.safetensors (model, optimizer,
                                       scheduler, RNG, state), best and periodic checkpoints
    metadata.json                      what the model is; a model exists once this file does

Each fact has one home: the specs live in the run directory (the model directory points there), the
registry holds rows that point to both. A classical model has no run: its ``estimator.yaml`` is here.

``metadata.json`` is written last, so a directory without it is an unfinished (or failed) run.
Its keys are the trainer's to choose; :func:`list_models` reads ``task``, ``table`` (or
``data.table``), ``created_at``, ``updated_at`` and ``best`` (``{"metric": ..., "value": ...}``).
:meth:`ModelArtifact.write_metadata` adds ``schema_version``, ``name``, ``created_at`` and
``updated_at``. This module does not import torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specml.data.files import atomic_write_json
from specml.errors import SpecmlError
from specml.home import models_dir

SCHEMA_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_EPOCH = re.compile(r"epoch-(\d+)\.safetensors")
_LIBRARIES = ("torch", "numpy", "duckdb", "pyarrow", "scikit-learn", "safetensors", "specml")


class ArtifactError(SpecmlError, ValueError):
    """A model directory that is missing, incomplete or unreadable, or a bad model name."""


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in {".", ".."}:
        raise ArtifactError(
            f"{name!r} is not a valid model name: use letters, digits, '_', '-' and '.', starting with a "
            "letter, digit or '_', at most 128 characters (no path separators or spaces)")
    return name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelArtifact:
    """The files of one trained model. Constructing one does no I/O."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @classmethod
    def for_name(cls, name: str, home: str | Path | None = None) -> ModelArtifact:
        """The model ``name`` in the specml home (``home``, ``$SPECML_HOME`` or ``~/.specml``)."""
        return cls(models_dir(home) / validate_name(name))

    def __repr__(self) -> str:
        return f"ModelArtifact({str(self.directory)!r})"

    @property
    def name(self) -> str:
        return self.directory.name

    @property
    def weights_path(self) -> Path:
        return self.directory / "model.safetensors"

    @property
    def run_dir(self) -> Path | None:
        """The model's latest run directory (``run.json``), or None — also when ``run.json`` is not an
        object or points outside ``<home>/runs/`` (a tampered pointer sends nothing elsewhere). The run is
        found by its id under this home's ``runs/`` first, so a home moved or copied elsewhere keeps working."""
        try:
            info = json.loads((self.directory / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict):
            return None
        runs = (self.directory.parent.parent / "runs").resolve()
        run_id = info.get("run_id")
        if isinstance(run_id, str) and run_id not in ("", ".", "..") and Path(run_id).name == run_id \
                and (runs / run_id).is_dir():
            return self.directory.parent.parent / "runs" / run_id
        run_dir = info.get("run_dir")
        if not isinstance(run_dir, str) or not run_dir:
            return None
        path = Path(run_dir)
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError):
            return None
        return path if runs in resolved.parents else None

    @property
    def checkpoints_dir(self) -> Path:
        """The checkpoints of the model's latest run (``run.json``), else ``<model>/checkpoints``."""
        run_dir = self.run_dir
        return run_dir / "checkpoints" if run_dir else self.directory / "checkpoints"

    @property
    def last_path(self) -> Path:
        return self.checkpoints_dir / "last.safetensors"

    def checkpoint_path(self, epoch: int) -> Path:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"an epoch is a whole number >= 0, not {epoch!r}")
        return self.checkpoints_dir / f"epoch-{epoch:04d}.safetensors"

    @property
    def model_spec_path(self) -> Path:
        """The exact model spec the model was trained with: ``specs/model.yaml`` of its run."""
        run_dir = self.run_dir
        if run_dir is None:
            raise ArtifactError(f"model '{self.name}': {self.directory / 'run.json'} does not name a run under "
                                f"{self.directory.parent.parent / 'runs'}, where its specs are kept")
        return run_dir / "specs" / "model.yaml"

    @property
    def trainer_spec_path(self) -> Path | None:
        """The trainer spec file of the model's run, or None (a single-file spec has none)."""
        run_dir = self.run_dir
        path = run_dir / "specs" / "trainer.yaml" if run_dir else None
        return path if path is not None and path.is_file() else None

    @property
    def metadata_path(self) -> Path:
        return self.directory / "metadata.json"

    def exists(self) -> bool:
        return self.metadata_path.is_file()

    def write_trained(self, model: Any, metadata: dict) -> None:
        """Save a trained network: its weights (safetensors), then ``metadata.json`` (last: the model exists
        once it is there). Spec copies a model directory held before are removed (the run keeps the specs)."""
        from specml.train.checkpoint import save_weights

        self.directory.mkdir(parents=True, exist_ok=True)
        save_weights(self.weights_path, model, {"name": self.name, "epoch": str(metadata.get("best", {}).get("epoch"))})
        for stale in ("model.yaml", "trainer.yaml"):
            (self.directory / stale).unlink(missing_ok=True)
        self.write_metadata(metadata)

    def write_metadata(self, metadata: dict) -> None:
        """Write ``metadata.json`` atomically, adding ``schema_version``, ``name``, ``updated_at`` (now, UTC)
        and ``created_at`` (kept from the file already there, else now)."""
        created = metadata.get("created_at")
        if created is None and self.exists():
            try:
                created = self.read_metadata().get("created_at")
            except ArtifactError:
                created = None
        now = _now()
        out = {"schema_version": SCHEMA_VERSION, "name": self.name, **metadata,
               "created_at": created or now, "updated_at": now}
        atomic_write_json(self.metadata_path, out)

    def read_metadata(self) -> dict:
        path = self.metadata_path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactError(f"model '{self.name}' not found: {path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"model '{self.name}': {path} cannot be read ({exc})") from None
        if not isinstance(data, dict):
            raise ArtifactError(f"model '{self.name}': {path} does not hold a JSON object")
        return data

    def list_checkpoints(self) -> list[Path]:
        """The periodic checkpoints (``epoch-NNNN.safetensors``) by epoch; ``last_path`` is not among them."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints_dir.iterdir()
                 if (m := _EPOCH.fullmatch(p.name)) and p.is_file()]
        return [p for _, p in sorted(found)]


def list_models(home: str | Path | None = None) -> list[dict]:
    """One row per model directory that has ``metadata.json``, by name: ``name``, ``task``, ``table``,
    ``created_at``, ``updated_at``, ``best_metric``, ``best_value``, ``path`` and ``error`` (``None``, or
    why the metadata could not be read; the other fields are then ``None``)."""
    root = models_dir(home)
    if not root.is_dir():
        return []
    rows = []
    for directory in sorted(root.iterdir(), key=lambda p: p.name):
        artifact = ModelArtifact(directory)
        if not directory.is_dir() or not artifact.exists():
            continue
        row: dict[str, Any] = {"name": directory.name, "task": None, "table": None, "created_at": None,
                               "updated_at": None, "best_metric": None, "best_value": None,
                               "path": str(directory), "error": None}
        try:
            md = artifact.read_metadata()
        except ArtifactError as exc:
            row["error"] = str(exc)
            rows.append(row)
            continue
        data = md.get("data") if isinstance(md.get("data"), dict) else {}
        best = md.get("best") if isinstance(md.get("best"), dict) else {}
        row.update(task=md.get("task"), table=md.get("table", data.get("table")), created_at=md.get("created_at"),
                   updated_at=md.get("updated_at"), best_metric=best.get("metric"), best_value=best.get("value"))
        rows.append(row)
    return rows


def spec_hash(text: str) -> str:
    """sha256 (hex) of the exact spec text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model depends on (``"missing"`` where not installed)."""
    versions = {"python": platform.python_version()}
    for dist in _LIBRARIES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "missing"
    return versions


class TrainedModel:
    """What every loaded model (network, classical, ensemble) says of itself from its ``metadata.json``."""

    metadata: dict

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def classes(self) -> list | None:
        return self.metadata.get("classes")
