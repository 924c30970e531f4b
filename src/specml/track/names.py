"""One rule for a model name that is taken, for every verb that makes a model (train, train-estimator, model).

A taken name is refused unless the user says ``--replace``; then the old model's directory is moved to
``models/.replaced/<name>/<time>/`` (recoverable: move it back), never deleted. ``--resume`` continues a
model, so it takes its own name.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from specml.artifact import ArtifactError, ModelArtifact
from specml.home import models_dir

REPLACED = ".replaced"


def free_name(name: str, home: str | Path | None = None) -> str:
    """``name_2``, ``name_3``, ...: the first name no model has."""
    n = 2
    while ModelArtifact.for_name(f"{name}_{n}", home).exists():
        n += 1
    return f"{name}_{n}"


def claim(name: str, home: str | Path | None = None, *, replace: bool = False, resume: bool = False) -> Path | None:
    """Make ``name`` free to train: refuse a taken name without ``replace`` (an :class:`ArtifactError`
    naming a free one); with ``replace`` move the old model aside and return where it went."""
    artifact = ModelArtifact.for_name(name, home)
    if resume or not artifact.exists():
        return None
    if not replace:
        raise ArtifactError(f"model '{name}' already exists ({artifact.directory}); pass --replace to train it "
                            f"again (the old one is kept under {models_dir(home) / REPLACED / name}/), or choose "
                            f"another --name (e.g. {free_name(name, home)})")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    target = models_dir(home) / REPLACED / name / stamp
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(artifact.directory), str(target))
    return target
