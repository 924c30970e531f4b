"""``specml tensorboard``: the real TensorBoard server over the runs in the specml home.

Also :func:`tensorboard_for_training`, which ``specml train --tensorboard/--no-tensorboard`` uses to
start a server for the run (by default only for a person at a terminal, never in CI).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from specml.cli.output import fail, user_errors


def runs_dir() -> Path:
    """Where runs write their TensorBoard files: ``<specml home>/runs``."""
    from specml.home import specml_home

    return specml_home() / "runs"


@user_errors
def tensorboard(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on (0: any free port).", min=0,
                                      max=65535)] = 6006,
    logdir: Annotated[Path | None, typer.Option("--logdir", help="Directory of runs (default: <SPECML_HOME>/runs).")]
    = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")]
    = "127.0.0.1",
) -> None:
    """Start TensorBoard over all runs, print its URL, and serve until Ctrl-C."""
    from specml.track.tensorboard import launch, stop

    if logdir is not None and not logdir.is_dir():
        fail(f"--logdir {logdir}: no such directory")
    directory = logdir if logdir is not None else runs_dir()
    if logdir is None and not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        typer.echo(f"note: no runs yet in {directory}; they appear as they are trained", err=True)
    try:
        process, url = launch(directory, port=port, host=host)
    except RuntimeError as err:
        fail(err)
    previous = signal.signal(signal.SIGTERM, _terminate)  # `kill` stops the server too
    try:
        typer.echo(f"TensorBoard at {url} (runs in {directory}); press Ctrl-C to stop")
        code = process.wait()
        typer.echo(f"error: TensorBoard exited with code {code}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        stop(process)
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def tensorboard_for_training(logdir: str | Path, flag: bool | None, port: int = 0) -> Any:
    """Start TensorBoard over ``logdir`` for a training run and print its URL; return the process (the
    caller stops it with :func:`specml.track.tensorboard.stop`), or None. ``flag`` None: only when
    :func:`specml.track.tensorboard.should_autolaunch` (a terminal, not CI). A server that fails to
    start is a warning, never a failed run."""
    from specml.track.tensorboard import launch, should_autolaunch

    if not (should_autolaunch() if flag is None else flag):
        return None
    try:
        process, url = launch(logdir, port=port)
    except RuntimeError as err:
        typer.echo(f"warning: TensorBoard was not started: {err}", err=True)
        return None
    typer.echo(f"TensorBoard at {url}")
    return process


def register(app) -> None:
    """Add ``specml tensorboard`` to the `specml` app."""
    app.command("tensorboard")(tensorboard)
