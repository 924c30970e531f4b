"""Shared set-up of the classical tests: a tmp specml home, a workspace with Pima and scikit-learn's
bundled data sets, and estimator spec files written on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from testkit import PIMA


def load_tables(ws) -> None:
    from sklearn.datasets import load_diabetes, load_wine

    ws.load(PIMA, "pima", replace=True)
    wine = load_wine()
    cols = {n.replace("/", "_"): wine.data[:, i] for i, n in enumerate(wine.feature_names)}
    cols["cultivar"] = np.asarray(["a", "b", "c"], dtype=object)[wine.target].tolist()
    ws.write_table("wine", pa.table(cols))
    diab = load_diabetes()
    cols = {n: diab.data[:, i] for i, n in enumerate(diab.feature_names)}
    cols["progression"] = diab.target
    ws.write_table("diabetes", pa.table(cols))
    # strings, NULLs and a time column: a synthetic churn table
    rng = np.random.default_rng(0)
    n = 400
    plan = rng.choice(["basic", "plus", "pro"], n)
    usage = rng.gamma(2.0, 10.0, n)
    churn = (rng.random(n) < 1 / (1 + np.exp(-(0.08 * (20 - usage) + (plan == "basic"))))).astype(np.int64)
    usage_list = usage.tolist()
    for i in range(0, n, 17):
        usage_list[i] = None
    plan_list = plan.tolist()
    for i in range(3, n, 23):
        plan_list[i] = None
    day = pa.array(rng.permutation(n).astype(np.int64)).cast(pa.int64())
    ws.write_table("churn", pa.table({"usage": usage_list, "plan": plan_list, "day": day, "churned": churn}))
    ws.sql("CREATE OR REPLACE TABLE churn AS SELECT usage, plan, DATE '2024-01-01' + CAST(day AS INTEGER) AS day, "
           "churned FROM churn")


def write_spec(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path
