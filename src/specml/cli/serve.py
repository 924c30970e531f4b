"""``specml serve --model NAME [--model NAME2] [--host 127.0.0.1] [--port 8000] [--background]``."""

from __future__ import annotations

from typing import Annotated

import typer

from specml.cli.output import console, fail, user_errors


@user_errors
def serve(
    model: Annotated[list[str], typer.Option("--model", help="A trained model to serve (repeat for several).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    max_body_mb: Annotated[float, typer.Option("--max-body-mb", help="Largest request body, in MiB (413 past it).")]
    = 16.0,
    max_batch_rows: Annotated[int, typer.Option("--max-batch-rows", help="Rows of concurrent requests scored in "
                                                                         "one forward pass, at most.")] = 4096,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="How long a request waits for others to "
                                                                     "join its batch.")] = 5.0,
    background: Annotated[bool, typer.Option("--background", help="Run as a background job (specml jobs list | "
                                                                  "logs | cancel).")] = False,
) -> None:
    """Serve trained models over HTTP: POST /predict, GET /health, /schema, /models."""
    from specml.artifact import ModelArtifact

    names = list(dict.fromkeys(model))
    for name in names:  # a missing model is said here, before a job or a server starts
        ModelArtifact.for_name(name).read_metadata()
    if not 0 < port < 65536:
        fail(f"--port {port}: a port is between 1 and 65535")
    if max_body_mb <= 0 or max_batch_rows < 1 or max_wait_ms < 0:
        fail("--max-body-mb and --max-batch-rows must be positive, --max-wait-ms at least 0")
    if background:
        from specml.track.jobs import start_background

        argv = ["serve", *[a for n in names for a in ("--model", n)], "--host", host, "--port", str(port),
                "--max-body-mb", str(max_body_mb), "--max-batch-rows", str(max_batch_rows),
                "--max-wait-ms", str(max_wait_ms)]
        job = start_background(argv, "serve-" + "+".join(names))
        console().print(f"started job {job} (serve {', '.join(names)} on http://{host}:{port}): "
                        f"specml jobs logs {job} --follow | specml jobs cancel {job}")
        return
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        fail("specml serve needs FastAPI and uvicorn: pip install 'specml[serve]'")
    from specml.serve import serve as run

    console(stderr=True).print(f"serving {', '.join(names)} on http://{host}:{port} (POST /predict, GET /health, "
                               "/schema, /models); Ctrl-C stops")
    run(names, host=host, port=port, max_body=int(max_body_mb * 1024 * 1024), max_rows=max_batch_rows,
        max_wait_ms=max_wait_ms)


def register(app) -> None:
    """Add ``specml serve`` to the app."""
    app.command("serve")(serve)
