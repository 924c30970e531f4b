"""Helpers of the search tests that start specml processes."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def env_for(home: Path) -> dict[str, str]:
    """The environment of a specml subprocess: this home, plain output, this tree's sources first."""
    env = {**os.environ, "SPECML_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    env.pop("SPECML_WORKSPACE", None)
    env.pop("FORCE_COLOR", None)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env
