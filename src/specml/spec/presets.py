"""Presets: named partial specs merged before the overrides (``--preset NAME`` or ``+experiment=NAME``).

A preset is a YAML file with ``trainer:`` and/or ``model:`` sections (``config:``, ``optimizer:``,
``scheduler:`` may be written without ``trainer:``); its values may use ``${...}`` references. Where a
name is looked for, first hit wins:

    a path (``--preset my/long.yaml``)
    ./presets/NAME.yaml               the project's presets (the current folder)
    <SPECML_HOME>/presets/NAME.yaml   the user's presets
    specml/presets/NAME.yaml          the shipped presets: quick, long, cpu-small, gpu-mixed-precision
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specml.home import specml_home
from specml.spec.errors import SpecError, SpecIssue, suggestion

SHIPPED = Path(__file__).resolve().parents[1] / "presets"


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    description: str


def preset_dirs(home: str | Path | None = None) -> list[Path]:
    """Where preset names are looked up, in order."""
    return [Path.cwd() / "presets", specml_home(home) / "presets", SHIPPED]


def list_presets(home: str | Path | None = None) -> list[Preset]:
    """Every preset by name (a project or user preset hides a shipped one of the same name)."""
    found: dict[str, Preset] = {}
    for folder in preset_dirs(home):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            found.setdefault(path.stem, Preset(path.stem, path, _description(path)))
    return sorted(found.values(), key=lambda p: p.name)


def _description(path: Path) -> str:
    try:
        first = path.read_text(encoding="utf-8").splitlines()[:1]
    except OSError:
        return ""
    return first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""


def find_preset(name: str, home: str | Path | None = None) -> Path:
    """The file of preset ``name`` (or ``name`` itself when it is a path to a YAML file)."""
    label = f"preset '{name}'"
    as_path = Path(name).expanduser()
    if as_path.suffix in (".yaml", ".yml") or "/" in name:
        if as_path.is_file():
            return as_path
        raise SpecError([SpecIssue(("experiment",), "file not found", None, label)])
    for folder in preset_dirs(home):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    names = [p.name for p in list_presets(home)]
    raise SpecError([SpecIssue(("experiment",), f"no preset named '{name}'",
                               suggestion(name, names) or f"presets: {', '.join(names) or 'none'}", label)])


def load_preset(name: str, home: str | Path | None = None) -> dict[str, Any]:
    """A preset's mapping; a :class:`SpecError` naming it when it is missing or not a mapping."""
    from specml.spec.yaml_io import read_yaml

    path = find_preset(name, home)
    data, _ = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise SpecError([SpecIssue((), "a preset is a mapping with trainer: and/or model: sections", None,
                                   str(path))])
    return data
