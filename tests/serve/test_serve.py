"""A real server (uvicorn on 127.0.0.1, a free port, in a thread that stops by itself) serving two tiny
networks: predictions equal ``specml predict``'s; concurrent requests are micro-batched; every bad request
is a 4xx naming the field, and the server keeps serving after it.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pyarrow as pa
import pytest
import torch

import modelzoo

torch.set_num_threads(1)
pytestmark = pytest.mark.slow  # trainings and a server
MAX_BODY = 256 * 1024
ARROW = "application/vnd.apache.arrow.stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(pima_home):
    import uvicorn

    from specml.serve import create_app, load_served

    modelzoo.pima_zoo(pima_home)
    names = [modelzoo.train_binary(pima_home), modelzoo.train_multiclass(pima_home)]
    app = create_app([load_served(n, pima_home) for n in names], max_body=MAX_BODY, max_wait_ms=50)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    stopper = threading.Timer(300, lambda: setattr(srv, "should_exit", True))  # never outlives the module long
    stopper.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", pima_home, app
    srv.should_exit = True
    stopper.cancel()
    thread.join(15)
    assert not thread.is_alive()


def call(url: str, body: bytes | None = None, ctype: str = "application/json") -> tuple[int, bytes, str]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers.get("content-type", "")


def call_big(base: str, path: str, body: bytes) -> tuple[int, bytes]:
    """POST a body the server refuses before it has all of it (it answers 413 and closes: the client may
    see a broken pipe while sending, then reads the answer)."""
    import http.client

    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_json(url: str, payload) -> tuple[int, dict]:
    status, body, _ = call(url, json.dumps(payload).encode())
    return status, json.loads(body)


def rows_of(columns: dict, start: int, stop: int) -> list[dict]:
    return [{k: v[i] for k, v in columns.items()} for i in range(start, stop)]


def assert_tables_equal(got: dict, want: pa.Table) -> None:
    assert list(got) == want.column_names
    for name in want.column_names:
        w = want.column(name).to_pylist()
        if isinstance(w[0], float):
            np.testing.assert_allclose(got[name], w, atol=1e-12, rtol=0, err_msg=name)
        else:
            assert got[name] == w, name


def still_serving(base: str) -> None:
    status, body, _ = call(f"{base}/health")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_json_columns_and_rows_equal_specml_predict(server):
    base, home, _ = server
    columns = modelzoo.columns_of(home)
    want = modelzoo.predicted(home, "bin_cat")
    status, out = post_json(f"{base}/predict/bin_cat", {"columns": columns, "keep": ["glucose_band"]})
    assert status == 200, out
    assert_tables_equal(out["columns"], want)
    status, out = post_json(f"{base}/predict?model=bin_cat", {"rows": rows_of(columns, 0, 5),
                                                             "keep": ["glucose_band"]})
    assert status == 200 and out["rows"] == want.slice(0, 5).to_pylist()


def test_arrow_and_parquet_bodies(server):
    import pyarrow.parquet as pq

    base, home, _ = server
    table = pa.table(modelzoo.columns_of(home))
    want = modelzoo.predicted(home, "multi")
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    status, body, ctype = call(f"{base}/predict/multi", sink.getvalue(), ARROW)
    assert status == 200 and ctype == ARROW
    assert_tables_equal(pa.ipc.open_stream(body).read_all().to_pydict(), want)
    typo = sink.getvalue()
    renamed = table.rename_columns(["insulim" if c == "insulin" else c for c in table.column_names])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, renamed.schema) as writer:
        writer.write_table(renamed)
    status, body, _ = call(f"{base}/predict/multi", sink.getvalue(), ARROW)
    assert status == 422 and "missing column 'insulin' (sent as 'insulim'?)" in json.loads(body)["error"]
    status, body, _ = call(f"{base}/predict/multi", typo[: len(typo) // 2], ARROW)
    assert status == 400 and "not a valid Arrow IPC stream" in json.loads(body)["error"]
    buf = io.BytesIO()
    pq.write_table(table, buf)
    status, body, _ = call(f"{base}/predict/multi", buf.getvalue(), "application/vnd.apache.parquet")
    assert status == 200
    assert_tables_equal(pa.ipc.open_stream(body).read_all().to_pydict(), want)


def test_concurrent_requests_are_batched_and_correct(server):
    base, home, app = server
    columns = modelzoo.columns_of(home)
    want = modelzoo.predicted(home, "bin_cat").column("probability").to_pylist()
    batcher = app.state.batchers["bin_cat"]
    before_batches, before_requests = batcher.batches, batcher.requests
    n = 24
    results: list = [None] * n
    start = threading.Barrier(n)

    def one(i: int) -> None:
        start.wait()
        results[i] = post_json(f"{base}/predict/bin_cat", {"rows": rows_of(columns, i, i + 1),
                                                           "keep": ["glucose_band"]})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert time.monotonic() - began < 60
    for i, (status, out) in enumerate(results):
        assert status == 200, out
        assert out["rows"][0]["probability"] == pytest.approx(want[i], abs=1e-6)
    assert batcher.requests - before_requests == n
    assert batcher.batches - before_batches < n  # several requests shared a forward pass


@pytest.mark.parametrize(("body", "status", "words"), [
    (b'{"rows": [', 400, "not valid JSON"),
    (b'[1, 2]', 400, "must be a JSON object"),
    (json.dumps({"rowz": []}).encode(), 400, "did you mean 'rows'"),
    ("missing", 422, "missing column 'glucose'"),
    ("typo", 422, "unknown column 'glucos' (did you mean 'glucose'?)"),
    ("wrong_type", 422, "column 'bmi', row 0: expected a number, got \"fat\""),
    ("null", 422, "column 'insulin', row 0: null"),
    ("oversize", 413, "at most 262144"),
])
def test_bad_requests_are_4xx_naming_the_field(server, body, status, words):
    base, home, _ = server
    row = rows_of(modelzoo.columns_of(home), 0, 1)[0]
    del row["glucose_band"]
    if body == "missing":
        body = json.dumps({"rows": [{k: v for k, v in row.items() if k != "glucose"}]}).encode()
    elif body == "typo":
        body = json.dumps({"rows": [{("glucos" if k == "glucose" else k): v for k, v in row.items()}]}).encode()
    elif body == "wrong_type":
        body = json.dumps({"rows": [{**row, "bmi": "fat"}]}).encode()
    elif body == "null":
        body = json.dumps({"rows": [{**row, "insulin": None}]}).encode()
    elif body == "oversize":
        body = json.dumps({"rows": [row] * 3000}).encode()
    if len(body) > MAX_BODY:
        got, text = call_big(base, "/predict/bin_cat", body)
    else:
        got, text, _ = call(f"{base}/predict/bin_cat", body)
    assert got == status, text
    assert words in json.loads(text)["error"]
    still_serving(base)
    ok, out = post_json(f"{base}/predict/bin_cat", {"rows": [row]})
    assert ok == 200 and len(out["rows"]) == 1


def test_threshold_in_the_body_or_the_query(server):
    base, home, _ = server
    rows = rows_of(modelzoo.columns_of(home), 0, 20)
    status, out = post_json(f"{base}/predict/bin_cat", {"rows": rows, "keep": ["glucose_band"], "threshold": 1e-9})
    assert status == 200 and {r["prediction"] for r in out["rows"]} == {1}
    status, out = post_json(f"{base}/predict/bin_cat?threshold=0.999999", {"rows": rows, "keep": ["glucose_band"]})
    assert status == 200 and {r["prediction"] for r in out["rows"]} == {0}
    status, out = post_json(f"{base}/predict/bin_cat?threshold=2", {"rows": rows, "keep": ["glucose_band"]})
    assert status == 422 and "threshold must be between 0 and 1" in out["error"]


def test_a_streamed_body_past_the_limit_is_413(server):
    import http.client

    base, _, _ = server
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    chunks = (b" " * 65536 for _ in range(8))  # chunked: no Content-Length, counted as it streams in
    try:
        try:
            conn.request("POST", "/predict/bin_cat", body=chunks, headers={"Content-Type": "application/json"},
                         encode_chunked=True)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the client finished sending; the answer is there
        response = conn.getresponse()
        assert response.status == 413 and "over 262144 bytes" in json.loads(response.read())["error"]
    finally:
        conn.close()
    still_serving(base)


def test_models_by_name_schema_and_health(server):
    base, _, _ = server
    status, out = post_json(f"{base}/predict", {"rows": [{"x": 1}]})
    assert status == 400 and "several models are served (bin_cat, multi)" in out["error"]
    status, out = post_json(f"{base}/predict/bin_ca", {"rows": [{"x": 1}]})
    assert status == 404 and "did you mean 'bin_cat'" in out["error"]
    status, body, _ = call(f"{base}/predict/bin_cat", b"a,b\n1,2", "text/csv")
    assert status == 415
    status, body, _ = call(f"{base}/schema/bin_cat")
    schema = json.loads(body)
    cols = {c["name"]: c for c in schema["columns"]}
    assert cols["age_band"]["categories"] == ["middle", "senior", "young"] and cols["glucose"]["type"] == "number"
    assert schema["passthrough"] == ["outcome"]
    status, body, _ = call(f"{base}/models")
    assert [m["name"] for m in json.loads(body)["models"]] == ["bin_cat", "multi"]
    status, body, _ = call(f"{base}/health")
    assert json.loads(body)["models"] == ["bin_cat", "multi"]
