"""Serving trained models over HTTP: ``specml serve --model NAME [--model NAME2]``.

FastAPI on uvicorn rather than LitServe: a plain ASGI app with two small dependencies (no extra
dependency tree, no process manager of its own), and the request checks are ours: they follow the
model's stored columns and vocabularies and answer a 4xx naming the bad field, which a generic
request decoder would not. Concurrent requests are micro-batched (:mod:`specml.serve.batching`);
scoring reuses :mod:`specml.train.inference` / :mod:`specml.classical.predict` and
:mod:`specml.predictions` (:mod:`specml.serve.models`); the routes are in :mod:`specml.serve.app`.
"""

from __future__ import annotations

from pathlib import Path

from specml.serve.app import MAX_BODY, create_app
from specml.serve.models import RequestError, Served, load_served

__all__ = ["MAX_BODY", "RequestError", "Served", "create_app", "load_served", "serve"]


def serve(names: list[str], *, host: str = "127.0.0.1", port: int = 8000, home: str | Path | None = None,
          max_body: int = MAX_BODY, max_rows: int = 4096, max_wait_ms: float = 5.0, log_level: str = "info") -> None:
    """Load the models and serve them until stopped (Ctrl-C, SIGTERM)."""
    import uvicorn

    app = create_app([load_served(n, home) for n in names], max_body=max_body, max_rows=max_rows,
                     max_wait_ms=max_wait_ms)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
