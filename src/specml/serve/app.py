"""The HTTP app: ``POST /predict`` (``/predict/{name}`` or ``?model=``), ``GET /health``, ``GET /schema``,
``GET /models``.

A request body is JSON ``{"rows": [{column: value, ...}, ...]}`` or ``{"columns": {column: [values]}}``
(optional ``"keep": [columns]`` to pass through, ``"threshold": x``), or an Arrow IPC stream
(``application/vnd.apache.arrow.stream``) or Parquet file (``application/vnd.apache.parquet``). The answer
holds the columns ``specml predict`` writes: JSON in the request's layout (rows or columns), an Arrow
stream for an Arrow or Parquet body. Bad requests are 4xx with a message naming the field; bodies over
``max_body`` bytes are 413.
"""

# no `from __future__ import annotations`: FastAPI reads the route annotations (Request is a local import)

import io
import json
from typing import Any

import pyarrow as pa

from specml.serve.batching import MicroBatcher
from specml.serve.models import RequestError, Served
from specml.spec.errors import suggestion

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
MAX_BODY = 16 * 1024 * 1024


def create_app(served: list[Served], *, max_body: int = MAX_BODY, max_rows: int = 4096,
               max_wait_ms: float = 5.0):
    """The FastAPI app serving ``served`` (loaded models, by name)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    models = {s.name: s for s in served}
    batchers = {s.name: MicroBatcher(s, max_rows=max_rows, max_wait_ms=max_wait_ms) for s in served}

    @asynccontextmanager
    async def lifespan(_app):
        for b in batchers.values():
            b.start()
        yield
        for b in batchers.values():
            await b.stop()

    app = FastAPI(title="specml serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def pick(name: str | None) -> Served:
        if name is None:
            if len(models) == 1:
                return next(iter(models.values()))
            raise RequestError(f"several models are served ({', '.join(models)}): name one, /predict/NAME or "
                               "?model=NAME", 400)
        if name not in models:
            hint = suggestion(name, list(models))
            raise RequestError(f"no model '{name}' is served" + (f" ({hint})" if hint else "") +
                               f"; served: {', '.join(models)}", 404)
        return models[name]

    @app.exception_handler(RequestError)
    async def _request_error(_request, err: RequestError):
        return error(err.status, str(err))

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": list(models),
                "batches": {n: b.batches for n, b in batchers.items()},
                "requests": {n: b.requests for n, b in batchers.items()}}

    @app.get("/models")
    async def list_models() -> dict:
        return {"models": [{"name": s.name, "kind": s.kind, "task": s.task, "columns": s.features}
                           for s in served]}

    @app.get("/schema")
    async def schema(model: str | None = None) -> Any:
        if model is None and len(models) > 1:
            return {"models": [s.schema() for s in served]}
        return pick(model).schema()

    @app.get("/schema/{name}")
    async def schema_of(name: str) -> Any:
        return pick(name).schema()

    async def predict_with(request: Request, name: str | None) -> Response:
        s = pick(name)
        with batchers[s.name].arriving():
            return await answer(request, s)

    async def answer(request: Request, s: Served) -> Response:
        body = await read_body(request, max_body)
        kind = (request.headers.get("content-type") or "application/json").split(";")[0].strip().lower()
        threshold = request.query_params.get("threshold")
        if kind in (ARROW, PARQUET):
            table = read_table(body, kind)
            keep = [c for c in table.column_names if c not in s.features]
            data, layout = s.check_table(table, keep), "arrow"
        elif kind in ("application/json", "text/json", ""):
            payload = parse_json(body)
            data, keep, layout = json_table(s, payload)
            threshold = payload.get("threshold", threshold)
        else:
            raise RequestError(f"content-type '{kind}' is not read here: send application/json, {ARROW} or "
                               f"{PARQUET}", 415)
        try:
            cut = _threshold(s, threshold)
            result = await batchers[s.name].scores(data)
        except RequestError:
            raise
        except Exception as err:  # a DataError from the preprocessing (NaN, a bad list) is the request's fault
            from specml.errors import SpecmlError

            if isinstance(err, SpecmlError):
                raise RequestError(str(err), 422) from None
            raise
        from specml.predictions import prediction_table

        table = prediction_table(data, keep, s.columns_of(result, cut))
        if layout == "arrow":
            sink = io.BytesIO()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            return Response(sink.getvalue(), media_type=ARROW)
        if layout == "columns":
            return JSONResponse({"model": s.name, "columns": table.to_pydict()})
        return JSONResponse({"model": s.name, "rows": table.to_pylist()})

    @app.post("/predict")
    async def predict(request: Request, model: str | None = None) -> Response:
        return await predict_with(request, model)

    @app.post("/predict/{name}")
    async def predict_named(request: Request, name: str) -> Response:
        return await predict_with(request, name)

    app.state.batchers = batchers
    return app


def _threshold(s: Served, given: Any) -> float:
    from specml.predictions import threshold_of

    try:
        return threshold_of(s.metadata, given)
    except ValueError as err:
        raise RequestError(str(err).replace("--threshold", "threshold"), 422) from None


async def read_body(request, limit: int) -> bytes:
    """The body, refused with 413 past ``limit`` bytes (by Content-Length, or while it streams in)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(f"the body is {int(length)} bytes; this server takes at most {limit} "
                           "(--max-body-mb); send fewer rows per request", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(f"the body is over {limit} bytes (--max-body-mb); send fewer rows per request", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(f"the body is not valid JSON: {err}", 400) from None
    if not isinstance(payload, dict):
        raise RequestError('the body must be a JSON object: {"rows": [{...}, ...]} or {"columns": {...}}', 400)
    return payload


def json_table(s: Served, payload: dict) -> tuple[pa.Table, list[str], str]:
    """(the checked table, the kept columns, "rows" or "columns") of a JSON request."""
    extra = [k for k in payload if k not in ("rows", "columns", "keep", "threshold")]
    if extra:
        hint = suggestion(extra[0], ["rows", "columns", "keep", "threshold"])
        raise RequestError(f"unknown field '{extra[0]}' in the body" + (f" ({hint})" if hint else "") +
                           '; send {"rows": [...]} or {"columns": {...}}', 400)
    keep = payload.get("keep") or []
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise RequestError('"keep" must be a list of column names', 400)
    if ("rows" in payload) == ("columns" in payload):
        raise RequestError('send either "rows": [{column: value, ...}, ...] or "columns": {column: [values]}', 400)
    if "rows" in payload:
        rows = payload["rows"]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise RequestError('"rows" must be a non-empty list of objects {column: value}', 400)
        names = list(dict.fromkeys(k for r in rows for k in r))
        for i, r in enumerate(rows):
            absent = [n for n in names if n not in r]
            if absent:
                s.check_names(list(r), keep)  # a missing feature is named first
                raise RequestError(f"rows[{i}] lacks column '{absent[0]}' that other rows have")
        columns = {n: [r[n] for r in rows] for n in names}
        layout = "rows"
    else:
        columns = payload["columns"]
        if not isinstance(columns, dict) or not columns:
            raise RequestError('"columns" must be an object {column: [values, ...]}', 400)
        layout = "columns"
    table = s.table_from_columns(columns, keep)
    kept = [c for c in table.column_names if c not in s.features]
    return table, kept, layout


def read_table(body: bytes, kind: str) -> pa.Table:
    try:
        if kind == PARQUET:
            import pyarrow.parquet as pq

            return pq.read_table(io.BytesIO(body))
        return pa.ipc.open_stream(body).read_all()
    except (pa.ArrowInvalid, OSError) as err:
        raise RequestError(f"the body is not a valid {'Parquet file' if kind == PARQUET else 'Arrow IPC stream'}: "
                           f"{err}", 400) from None
