"""specml's XGBoost path vs calling XGBoost directly, on the same split with the same parameters.

A synthetic binary table (default 200,000 rows x 20 numeric columns) is written to a workspace.
Per round, interleaved:

* specml: ``train_estimator`` from the estimator spec (read the table, split, preprocess, fit with
  early stopping on the validation split, score, save); its fit phase (``timings.fit_s``) and the
  whole call are timed;
* direct: ``xgboost.XGBClassifier(**same params).fit`` on the same training rows (taken from
  specml's split), the same validation rows for early stopping, the same ``n_jobs``.

Prints the best round of each, the fit-time ratio direct / specml (target >= 0.95) and whether the
test-split probabilities of the saved-and-reloaded specml model equal the direct model's
(``np.array_equal``).

    .venv/bin/python bench/classical_overhead.py --rows 200000 --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa


def make_table(rows: int, cols: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, cols))
    logit = X[:, :5] @ np.array([1.0, -0.8, 0.6, 0.5, -0.4]) + 0.3 * X[:, 5] * X[:, 6]
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    return pa.table({**{f"x{i}": X[:, i] for i in range(cols)}, "label": y})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--estimators", type=int, default=200)
    args = parser.parse_args()

    import xgboost

    from specml.classical.predict import load_classical
    from specml.classical.train import train_estimator
    from specml.data.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="specml-bench-"))
    ws = Workspace(tmp / "ws.duckdb")
    table = make_table(args.rows, args.cols)
    ws.write_table("synthetic", table)
    params = {"n_estimators": args.estimators, "max_depth": 6, "learning_rate": 0.1, "n_jobs": args.threads,
              "tree_method": "hist"}
    spec = tmp / "xgb.yaml"
    spec.write_text(
        "estimator:\n  type: xgboost.XGBClassifier\n  params: " + str(params).replace("'", "") + "\n"
        "target: label\nrandom_state: 7\nimbalance_handling: {method: none}\n"
        "early_stopping: {enabled: true, rounds: 20}\nverbose: 0\n", encoding="utf-8")

    specml_fit, specml_cpu, specml_total, direct_fit, direct_cpu = [], [], [], [], []
    X = np.column_stack([table.column(f"x{i}").to_numpy() for i in range(args.cols)])
    y = table.column("label").to_numpy()
    split = direct = None

    def run_specml():
        nonlocal split
        t0 = time.perf_counter()
        result = train_estimator(spec, table="synthetic", name="bench_xgb", workspace=ws, home=tmp)
        specml_total.append(time.perf_counter() - t0)
        specml_fit.append(result.fit_s)
        specml_cpu.append(result.fit_cpu_s)
        split = result.split

    def run_direct():
        nonlocal direct
        direct = xgboost.XGBClassifier(**params, random_state=7, early_stopping_rounds=20)
        Xtr, ytr = X[split.train], y[split.train]
        ev = [(X[split.validation], y[split.validation])]
        t0, c0 = time.perf_counter(), time.process_time()
        direct.fit(Xtr, ytr, eval_set=ev, verbose=False)
        direct_fit.append(time.perf_counter() - t0)
        direct_cpu.append(time.process_time() - c0)

    run_specml()  # the split the direct fits use
    specml_fit.clear(), specml_cpu.clear(), specml_total.clear()
    for r in range(args.rounds):
        for step in ((run_specml, run_direct) if r % 2 == 0 else (run_direct, run_specml)):  # alternate order
            step()
        print(f"round {r + 1}: specml fit {specml_fit[-1]:.3f}s (cpu {specml_cpu[-1]:.3f}s; whole train_estimator "
              f"{specml_total[-1]:.3f}s), direct fit {direct_fit[-1]:.3f}s (cpu {direct_cpu[-1]:.3f}s)")

    model = load_classical("bench_xgb", tmp)
    ours = model.scores(table.take(split.test))
    theirs = direct.predict_proba(X[split.test])[:, 1]
    identical = bool(np.array_equal(ours, theirs))
    best_s, best_total, best_d = min(specml_fit), min(specml_total), min(direct_fit)
    print()
    print(f"rows {args.rows:,} x {args.cols} (train {len(split.train):,}, validation {len(split.validation):,}, "
          f"test {len(split.test):,}); xgboost {xgboost.__version__}, n_jobs {args.threads}, "
          f"best of {args.rounds} rounds")
    print(f"fit:   specml {best_s:.3f}s  direct {best_d:.3f}s  ratio direct/specml {best_d / best_s:.3f} "
          f"(target >= 0.95)")
    print(f"fit CPU time: specml {min(specml_cpu):.3f}s  direct {min(direct_cpu):.3f}s  ratio "
          f"{min(direct_cpu) / min(specml_cpu):.3f}")
    print(f"whole train_estimator (read, split, preprocess, fit, score 3 splits, save): {best_total:.3f}s "
          f"= {best_total / best_d:.2f} x the direct fit")
    print(f"test probabilities identical (np.array_equal, specml reloaded vs direct): {identical}")
    ws.close()


if __name__ == "__main__":
    main()
