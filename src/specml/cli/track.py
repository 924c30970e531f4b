"""``specml tensorboard``: the real TensorBoard server over the runs in the specml home, kept running
(:mod:`specml.track.tbserver`) until ``specml tensorboard --stop``; ``--foreground`` serves until Ctrl-C.

Also :func:`tensorboard_for_training`, which ``specml train --tensorboard/--no-tensorboard`` uses to
reuse or start that server (by default only for a person at a terminal, never in CI).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from specml.cli.output import fail, user_errors


def runs_dir() -> Path:
    """Where runs write their TensorBoard files: ``<specml home>/runs``."""
    from specml.home import home_folder

    return home_folder("runs")


@user_errors
def tensorboard(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to serve on; the next free one when it is busy "
                                                           "(0: any free port).", min=0, max=65535)] = 6006,
    logdir: Annotated[Path | None, typer.Option("--logdir", help="Directory of runs (default: <SPECML_HOME>/runs).")]
    = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")]
    = "127.0.0.1",
    stop_server: Annotated[bool, typer.Option("--stop", help="Stop the TensorBoard this home runs.")] = False,
    foreground: Annotated[bool, typer.Option("--foreground", help="Serve from this command until Ctrl-C "
                                                                  "instead of in the background.")] = False,
) -> None:
    """Serve TensorBoard over all runs and print its URL; it keeps running (reused by later commands and by
    `specml train --tensorboard`) until `specml tensorboard --stop`."""
    from specml.track import tbserver

    if stop_server:
        stopped = tbserver.stop_recorded()
        typer.echo(f"stopped TensorBoard at {stopped.url}" if stopped else "no TensorBoard was running")
        return
    if logdir is not None and not logdir.is_dir():
        fail(f"--logdir {logdir}: no such directory")
    directory = logdir if logdir is not None else runs_dir()
    if logdir is None and not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        typer.echo(f"note: no runs yet in {directory}; they appear as they are trained", err=True)
    if foreground:
        _serve_here(directory, port, host)
        return
    try:
        server = tbserver.ensure(directory, port=port, host=host)
    except RuntimeError as err:
        fail(err)
    _say(server, directory)
    if not server.reused:
        typer.echo("it keeps running; stop it with: specml tensorboard --stop")


def _say(server: Any, directory: Path) -> None:
    if server.asked_port is not None:
        typer.echo(f"note: port {server.asked_port} is busy; serving on {server.port}", err=True)
    state = "already running" if server.reused else "started"
    typer.echo(f"TensorBoard at {server.url} ({state}; runs in {directory})")


def _serve_here(directory: Path, port: int, host: str) -> None:
    """The server as a child of this command, until Ctrl-C or SIGTERM."""
    from specml.track.tensorboard import launch, stop

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


def tensorboard_for_training(logdir: str | Path, flag: bool | None, port: int = 6006) -> Any:
    """Make sure TensorBoard serves ``logdir`` for a training run and print its URL: reuse the running
    server or start one that outlives the run (``specml tensorboard --stop`` ends it). Returns None (there
    is nothing for the caller to stop). ``flag`` None: only when
    :func:`specml.track.tensorboard.should_autolaunch` (a terminal, not CI). A server that fails to
    start is a warning, never a failed run."""
    from specml.track import tbserver
    from specml.track.tensorboard import should_autolaunch

    if not (should_autolaunch() if flag is None else flag):
        return None
    try:
        server = tbserver.ensure(logdir, port=port)
    except RuntimeError as err:
        typer.echo(f"warning: TensorBoard was not started: {err}", err=True)
        return None
    _say(server, Path(logdir))
    if not server.reused:
        typer.echo("TensorBoard keeps running after the run; stop it with: specml tensorboard --stop")
    return None


def register(app) -> None:
    """Add ``specml tensorboard`` to the `specml` app."""
    app.command("tensorboard")(tensorboard)
