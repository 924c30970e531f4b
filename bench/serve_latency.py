"""Serving latency and throughput: ``specml serve`` over HTTP vs the exported ONNX model in-process, and
the exported model's batch throughput vs ``specml predict``.

Set-up (a temporary specml home): the bundled Pima table, the Pima MLP trained for a few epochs, exported to
ONNX; ``specml serve`` started as its own process on 127.0.0.1 (a free port).

* latency: ``--requests`` sequential requests of batch 1 and of batch 256 (JSON rows, one keep-alive
  connection) against the same rows scored in-process by onnxruntime through ``specml_preprocess.py``
  (encode + run + decode); p50 / p99 in ms and rows/s, and the ratios HTTP / in-process;
* concurrency: ``--clients`` threads sending batch-1 requests at once (the server micro-batches them);
* batch throughput: ``--rows`` rows (Pima repeated) through ``api.predict`` (read the table, score, lay out
  the columns) vs encode + onnxruntime + decode on the same rows; rows/s and the ratio.

    nice -n 10 .venv/bin/python bench/serve_latency.py --requests 200 --rows 200000
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAINER = ("optimizer: {type: torch.optim.Adam, lr: 0.01}\n"
           "config: {epochs: 3, batch_size: 64, seed: 3, verbose: false, make_plots: false, tensorboard: false}\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def summary(times: list[float], rows: int) -> dict:
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "rows_per_s": rows * len(times) / sum(times)}


def http_latency(port: int, rows: list[dict], n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = json.dumps({"rows": rows, "keep": []}).encode()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - t)
        assert response.status == 200, response.status
    conn.close()
    return times


def concurrent(port: int, row: dict, clients: int, per_client: int) -> tuple[float, int]:
    """(requests per second, requests) with ``clients`` threads each sending ``per_client`` batch-1 requests."""
    start = threading.Barrier(clients + 1)

    def one() -> None:
        start.wait()
        http_latency(port, [row], per_client)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return clients * per_client / (time.perf_counter() - t0), clients * per_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per batch size")
    parser.add_argument("--rows", type=int, default=200_000, help="rows for the batch-throughput comparison")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import importlib.util

    import onnxruntime as ort
    import pyarrow as pa

    from specml import api
    from specml.data.workspace import Workspace
    from specml.export import export_model

    home = Path(tempfile.mkdtemp(prefix="specml-serve-bench-"))
    ws_path = home / "workspace.duckdb"
    with Workspace(ws_path) as ws:
        ws.load(ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv", "pima")
        pima = ws.read_columns("pima", list(ws.columns("pima")))
        repeats = -(-args.rows // pima.num_rows)
        ws.write_table("big", pa.concat_tables([pima] * repeats).slice(0, args.rows))
    (home / "trainer.yaml").write_text(TRAINER)
    api.train(ROOT / "examples" / "pima_mlp" / "model.yaml", home / "trainer.yaml", table="pima", name="mlp",
              home=home, workspace=ws_path, verbose=False, track=False)
    out = export_model("mlp", "onnx", home / "exported", home=home).directory
    spec = importlib.util.spec_from_file_location("specml_preprocess", out / "specml_preprocess.py")
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    prep = ref.load(out)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(out / "model.onnx"), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def in_process(columns: dict) -> dict:
        return ref.decode(prep, dict(zip(names, session.run(names, ref.encode(prep, columns)), strict=True)))

    features = [c for s in prep["inputs"].values() for c in s["columns"]]
    rows = [{c: pima.column(c)[i].as_py() for c in features} for i in range(256)]

    port = free_port()
    env = {**os.environ, "SPECML_HOME": str(home), "OMP_NUM_THREADS": str(args.threads)}
    server = subprocess.Popen([sys.executable, "-m", "specml", "serve", "--model", "mlp", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        print(f"threads {args.threads}; {args.requests} sequential requests per batch size; ONNX in-process = "
              "encode + onnxruntime + decode (specml_preprocess.py)\n")
        print(f"{'batch':>5} {'path':<11} {'p50 ms':>8} {'p99 ms':>8} {'rows/s':>10}")
        for batch in (1, 256):
            part = rows[:batch]
            columns = {c: [r[c] for r in part] for c in features}
            http_latency(port, part, 10)  # warm-up
            for _ in range(10):
                in_process(columns)
            h = summary(http_latency(port, part, args.requests), batch)
            times = []
            for _ in range(args.requests):
                t = time.perf_counter()
                in_process(columns)
                times.append(time.perf_counter() - t)
            p = summary(times, batch)
            for label, s in (("HTTP", h), ("in-process", p)):
                print(f"{batch:>5} {label:<11} {s['p50_ms']:>8.3f} {s['p99_ms']:>8.3f} {s['rows_per_s']:>10.0f}")
            print(f"{batch:>5} {'ratio':<11} {h['p50_ms'] / p['p50_ms']:>7.1f}x {h['p99_ms'] / p['p99_ms']:>7.1f}x "
                  f"{p['rows_per_s'] / h['rows_per_s']:>9.1f}x  (HTTP / in-process latency; in-process / HTTP rows/s)")
        per_client = max(1, args.requests // args.clients)
        rps, n = concurrent(port, rows[0], args.clients, per_client)
        print(f"\nconcurrent: {args.clients} clients x {per_client} batch-1 requests: {rps:.0f} requests/s")
    finally:
        server.terminate()
        server.wait(30)

    big = Workspace(ws_path, read_only=True)
    data = big.read_columns("big", features)
    big.close()
    columns = {c: data.column(c).to_numpy() for c in features}
    t = time.perf_counter()
    api.predict("mlp", "big", home=home, workspace=ws_path)
    specml_s = time.perf_counter() - t
    t = time.perf_counter()
    in_process(columns)
    onnx_s = time.perf_counter() - t
    print(f"\nbatch throughput, {args.rows:,} rows: specml predict {args.rows / specml_s:,.0f} rows/s "
          f"(reads the table), ONNX (encode + run + decode) {args.rows / onnx_s:,.0f} rows/s; "
          f"ratio ONNX / specml {specml_s / onnx_s:.2f}x")


if __name__ == "__main__":
    main()
