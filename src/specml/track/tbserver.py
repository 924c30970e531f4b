"""The TensorBoard server that stays: one per specml home, started detached, reused, stopped on request.

``<home>/tensorboard.json`` records the running server (pid, url, logdir); ``<home>/tensorboard.log``
holds its output. :func:`ensure` reuses a live one over the same logdir or starts one on the asked port,
or the next free one (said in the result); it outlives the command that started it (``specml train``
included) until :func:`stop_recorded` (``specml tensorboard --stop``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from specml.track.tensorboard import _answers, _free_port

STATE = "tensorboard.json"
LOG = "tensorboard.log"
TRIES = 20  # ports tried after the asked one


@dataclass(frozen=True)
class Server:
    pid: int
    url: str
    logdir: str
    port: int
    asked_port: int | None = None  # the port asked for, when it was busy and another one serves
    reused: bool = False


def _home(home: str | Path | None) -> Path:
    from specml.home import specml_home

    return specml_home(home)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(home: str | Path | None = None) -> Server | None:
    """The recorded server when it is alive and answers; a stale record is removed."""
    path = _home(home) / STATE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        server = Server(int(data["pid"]), str(data["url"]), str(data["logdir"]), int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(server.pid) and _answers(server.url + "data/environment"):
        return server
    path.unlink(missing_ok=True)
    return None


def _pick_port(host: str, port: int) -> int:
    if port == 0:
        return _free_port(host, 0)
    for candidate in range(port, min(port + TRIES + 1, 65536)):
        try:
            return _free_port(host, candidate)
        except RuntimeError:
            continue
    raise RuntimeError(f"ports {port}-{port + TRIES} on {host} are all in use; pick another with --port")


def ensure(logdir: str | Path, home: str | Path | None = None, *, port: int = 6006, host: str = "127.0.0.1",
           timeout: float = 90.0) -> Server:
    """A running server over ``logdir``: the recorded one when it serves the same logdir, else a new,
    detached one on ``port`` or the next free port. RuntimeError when it does not start."""
    logdir = Path(logdir).resolve()
    found = running(home)
    if found is not None and Path(found.logdir) == logdir:
        return Server(found.pid, found.url, found.logdir, found.port, reused=True)
    if found is not None:
        stop_recorded(home)  # one server per home: the new logdir replaces the old one
    logdir.mkdir(parents=True, exist_ok=True)
    chosen = _pick_port(host, port)
    url = f"http://{host}:{chosen}/"
    base = _home(home)
    base.mkdir(parents=True, exist_ok=True)
    with open(base / LOG, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(chosen), "--host", host],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"TensorBoard exited with code {process.returncode} before answering on {url} "
                               f"(its output: {base / LOG})")
        if _answers(url + "data/environment"):
            from specml.data.files import atomic_write_json

            atomic_write_json(base / STATE, {"pid": process.pid, "url": url, "logdir": str(logdir), "port": chosen,
                                             "host": host})
            return Server(process.pid, url, str(logdir), chosen, asked_port=port if port not in (0, chosen)
                          else None)
        time.sleep(0.3)
    _terminate(process.pid)
    raise RuntimeError(f"TensorBoard did not answer on {url} within {timeout:g} s (its output: {base / LOG})")


def _terminate(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_recorded(home: str | Path | None = None) -> Server | None:
    """Stop the recorded server; return it, or None when none was running."""
    server = running(home)
    (_home(home) / STATE).unlink(missing_ok=True)
    if server is None:
        return None
    _terminate(server.pid)
    return server
