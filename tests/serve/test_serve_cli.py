"""``specml serve``: a clear error before anything starts, and a background server through ``specml jobs``."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request

import pytest
import torch

import modelzoo
from testkit import failed, ok, specml

torch.set_num_threads(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unknown_model_fails_before_serving(cli, specml_home):
    message = failed(cli("serve", "--model", "nope", "--port", "8123", home=specml_home))
    assert "model 'nope' not found" in message


def test_bad_port_is_refused(cli, specml_home):
    (specml_home / "models" / "m").mkdir(parents=True)
    (specml_home / "models" / "m" / "metadata.json").write_text("{}")
    assert "--port 70000" in failed(cli("serve", "--model", "m", "--port", "70000", home=specml_home))


@pytest.mark.slow
def test_background_server_answers_then_cancels(pima_home):
    modelzoo.pima_zoo(pima_home)
    name = modelzoo.train_binary(pima_home)
    port = free_port()
    started = ok(specml(pima_home, "serve", "--model", name, "--port", str(port), "--background"))
    job = re.search(r"started job (\d+)", started.stdout).group(1)
    try:
        deadline, health = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert health == {"status": "ok", "models": [name], "batches": {name: 0}, "requests": {name: 0}}
        status = ok(specml(pima_home, "jobs", "status", job))
        assert "running" in status.stdout and "serve" in status.stdout
    finally:
        done = specml(pima_home, "jobs", "cancel", job, "--grace", "5")
    assert done.returncode == 0 and "cancelled" in done.stdout, done.stderr


def test_the_cli_imports_no_server_export_or_tracking_library():
    import subprocess
    import sys

    code = ("import sys; from specml.cli.app import app; "
            "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn', 'onnx', 'onnxruntime', 'mlflow') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
