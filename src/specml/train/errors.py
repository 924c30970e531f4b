"""The training error, importable without torch (re-exported by :mod:`specml.train.engine`)."""

from __future__ import annotations

from specml.errors import SpecmlError


class TrainingError(SpecmlError, RuntimeError):
    """A run that cannot go on: a bad monitor name, a diverged loss, a device that is not there."""
