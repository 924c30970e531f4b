"""Nothing runs from the folder the user stands in: a background job's import path excludes it, and a
``*.dist-info`` lying there registers no plugin (the allow-list is the same in the foreground and in jobs)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from specml.track.jobs import start_background
from specml.track.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def _plant(folder: Path, marker: Path) -> None:
    """A typer.py that would leave a marker if imported, and a fake distribution registering a plugin."""
    (folder / "typer.py").write_text(f"open({str(marker)!r}, 'w').write('typer.py ran')\nraise SystemExit(3)\n")
    (folder / "evil_layers.py").write_text(f"open({str(marker)!r}, 'w').write('plugin ran')\n"
                                           "import torch\nclass X(torch.nn.Identity):\n    pass\n")
    dist = folder / "evil_layers-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-layers\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[specml.layers]\nevil.X = evil_layers:X\n")


def test_a_background_job_does_not_import_from_its_working_directory(tmp_path):
    cwd, home, marker = tmp_path / "here", tmp_path / "home", tmp_path / "marker"
    cwd.mkdir()
    _plant(cwd, marker)
    reg = Registry(home=home)
    job_id = start_background(["data", "tables"], "data-tables", home=home, registry=reg, cwd=cwd)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and reg.get_job(job_id).status in ("queued", "running"):
        time.sleep(0.1)
    job = reg.get_job(job_id)
    log = Path(job.log_path).read_text(encoding="utf-8")
    assert job.status == "completed", log
    assert not marker.exists(), marker.read_text()


@pytest.mark.slow
def test_a_dist_info_in_the_working_directory_registers_no_plugin(tmp_path):
    cwd, marker = tmp_path / "here", tmp_path / "marker"
    cwd.mkdir()
    _plant(cwd, marker)
    (cwd / "typer.py").unlink()  # `python -m` puts the folder first on the path: only the plugin is tested here
    spec = cwd / "spec.yaml"
    spec.write_text(textwrap.dedent("""
        name: m
        inputs: {x: {shape: [null, 2], dtype: float32, columns: [a, b]}}
        graph:
          - {name: e, type: evil.X, inputs: {input: x}}
        outputs: {y: e.output}
    """))
    env = {**os.environ, "NO_COLOR": "1"}
    result = subprocess.run([sys.executable, "-m", "specml", "validate", str(spec)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "type 'evil.X' is not allowed" in result.stdout + result.stderr
    assert not marker.exists()
