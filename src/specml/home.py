"""Where specml keeps things: the specml home (``SPECML_HOME`` or ``~/.specml``) and its layout.

    <home>/workspace.duckdb     the default workspace (``--workspace`` / ``SPECML_WORKSPACE`` override)
    <home>/models/<name>/      trained models (artifacts)
    <home>/runs/<id>/          training runs
"""

from __future__ import annotations

import os
from pathlib import Path


def specml_home(override: str | Path | None = None) -> Path:
    """``override``, else ``$SPECML_HOME``, else ``~/.specml`` (not created here)."""
    home = Path(override).expanduser() if override else (
        Path(os.environ["SPECML_HOME"]).expanduser() if os.environ.get("SPECML_HOME") else Path.home() / ".specml")
    if home.exists() and not home.is_dir():
        from specml.errors import SpecmlError

        raise SpecmlError(f"the specml home {home} is a file, not a folder", "set SPECML_HOME to a folder")
    return home


def workspace_path(override: str | Path | None = None, home: str | Path | None = None) -> Path | str:
    """The workspace database: ``override``, ``$SPECML_WORKSPACE``, or ``<home>/workspace.duckdb``."""
    if override:
        return override if str(override) == ":memory:" else Path(override).expanduser()
    env = os.environ.get("SPECML_WORKSPACE")
    if env:
        return env if env == ":memory:" else Path(env).expanduser()
    return specml_home(home) / "workspace.duckdb"


def home_folder(name: str, home: str | Path | None = None) -> Path:
    """``<home>/<name>`` (``models``, ``runs``), refused when something other than a folder is there."""
    path = specml_home(home) / name
    if path.exists() and not path.is_dir():
        from specml.errors import SpecmlError

        raise SpecmlError(f"{path} is a file, not a folder", f"move it aside; specml keeps its {name} there")
    return path


def models_dir(home: str | Path | None = None) -> Path:
    return home_folder("models", home)


def slug(name: str, limit: int = 100) -> str:
    """``name`` as one safe path component: letters, digits, '_', '-' and '.' kept, anything else '_';
    never empty, never '.' or '..', never starting with '.' (a table called ``../../x`` stays home)."""
    import re

    text = re.sub(r"[^A-Za-z0-9_.-]", "_", str(name))[:limit].lstrip(".")
    return text or "_"


def inside(path: Path, root: Path) -> Path:
    """``path`` resolved, refused unless it lies under ``root`` (a name turned into a path stays home)."""
    resolved, base = Path(path).resolve(), Path(root).resolve()
    if resolved != base and base not in resolved.parents:
        from specml.errors import SpecmlError

        raise SpecmlError(f"{path} is outside {root}; specml writes only under its home")
    return resolved
