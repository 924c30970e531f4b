"""What an evaluation reports beyond the metrics, the same for neural and classical models.

A classifier's confusion matrix, per-class support and the decision threshold used
(:func:`classification_details`); a threshold chosen on validation rows (:func:`choose_threshold`, F1 or
Youden's J); and whether the evaluated rows are rows the model trained or validated on
(:func:`seen_rows`). Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("f1", "youden")


def _positive_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    return s.reshape(-1) if s.ndim == 1 or s.shape[-1] == 1 else s[:, -1]


def classification_details(task: str, y_true: np.ndarray, scores: np.ndarray, classes: list | None,
                           threshold: float = 0.5) -> dict[str, Any]:
    """``classes``, ``confusion_matrix`` (rows: true class, columns: predicted), ``support`` per class
    and (binary) the ``threshold`` with precision, recall, F1 and accuracy at it. Empty for regression."""
    if task not in ("binary", "multiclass"):
        return {}
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(2 if task == "binary"
                                                                                      else int(y.max()) + 1)]
    k = len(names)
    if task == "binary":
        p = _positive_scores(scores)
        pred = (p > threshold).astype(np.int64)
    else:
        pred = np.asarray(scores, dtype=np.float64).reshape(len(y), k).argmax(axis=1)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y, pred), 1)
    out: dict[str, Any] = {"classes": names, "confusion_matrix": matrix.tolist(),
                           "support": {n: int(matrix[i].sum()) for i, n in enumerate(names)}}
    if task == "binary":
        tp, fp, fn = int(matrix[1, 1]), int(matrix[0, 1]), int(matrix[1, 0])
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        out["threshold"] = float(threshold)
        out["at_threshold"] = {"accuracy": float(np.trace(matrix) / max(len(y), 1)), "precision": precision,
                               "recall": recall,
                               "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0}
    return out


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, method: str = "f1") -> float:
    """The threshold on P(positive) that maximises F1 or Youden's J (TPR - FPR) on these rows; 0.5 when
    the rows hold one class only. Ties go to the threshold closest to 0.5."""
    if method not in METHODS:
        raise ValueError(f"threshold method must be one of {', '.join(METHODS)}, got '{method}'")
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = _positive_scores(scores)
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    if positives == 0 or negatives == 0:
        return 0.5
    cuts = np.unique(np.concatenate([p, [0.5]]))
    cuts = cuts[(cuts > 0.0) & (cuts < 1.0)]
    # every cut at once: the positives / negatives scored above each cut, from the sorted scores
    tp = positives - np.searchsorted(np.sort(p[y == 1]), cuts, side="right")
    fp = negatives - np.searchsorted(np.sort(p[y != 1]), cuts, side="right")
    if method == "f1":
        fn = positives - tp
        values = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    else:
        values = tp / positives - fp / negatives
    near_best = np.flatnonzero(values >= values.max() - 1e-12)
    return float(cuts[near_best[np.argmin(np.abs(cuts[near_best] - 0.5))]])


def seen_rows(ws: Any, table: str, trained_on: str | None, columns: list[str],
              fingerprint: str | None = None) -> dict[str, Any] | None:
    """How many rows of ``table`` are rows of ``trained_on`` (the table the model trained and validated
    on), compared on ``columns`` (its features and target). None when there is nothing to compare.

    Returns ``{"rows", "seen", "training_table", "changed"}``; ``changed``: the training table's
    fingerprint differs from the one recorded at training time (the count is then about today's table).
    """
    from specml.data.files import fingerprint as table_fingerprint

    if not trained_on or not ws.has_table(trained_on) or not columns:
        return None
    ident = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    total, seen = ws.con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE hash({ident}) IN (SELECT hash({ident}) FROM {q(trained_on)})) "
        f"FROM {q(table)}").fetchone()
    changed = fingerprint is not None and table_fingerprint(ws, trained_on)[1] != fingerprint
    return {"rows": int(total), "seen": int(seen), "training_table": trained_on, "changed": bool(changed)}


def seen_warning(model: str, table: str, seen: dict[str, Any] | None) -> str | None:
    """A clear sentence when the evaluated rows include rows the model trained or validated on."""
    if not seen or not seen["seen"]:
        return None
    what = "all" if seen["seen"] == seen["rows"] else f"{seen['seen']:,} of the {seen['rows']:,}"
    text = (f"{what} rows of '{table}' are rows '{model}' trained or validated on (table "
            f"'{seen['training_table']}'): these metrics are optimistic; evaluate on rows held out before "
            "training (specml data split)")
    if seen["changed"]:
        text += f" [table '{seen['training_table']}' changed since training]"
    return text


# ----------------------------------------------------------------------------------------------
# stored evaluations: models/<name>/evaluations/<table>.json


def _evaluation_path(directory: Any, table: str) -> Any:
    from pathlib import Path

    from specml.home import slug

    return Path(directory) / "evaluations" / f"{slug(table)}.json"


def store_report(directory: Any, report: dict, model_updated_at: str | None) -> None:
    """Keep an evaluation report beside the model (with the table's fingerprint in ``report["data"]``
    and the model's ``updated_at``), for the leaderboard and the model report to read back."""
    from specml.data.files import atomic_write_json

    atomic_write_json(_evaluation_path(directory, report["table"]),
                      {**report, "model_updated_at": model_updated_at})


def stored_report(directory: Any, table: str, fingerprint: str | None, model_updated_at: str | None) -> dict | None:
    """The stored evaluation of this model on ``table`` when it is still current: the table has the same
    fingerprint and the model was not trained again since. None otherwise."""
    import json

    path = _evaluation_path(directory, table)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("table") != table:
        return None
    if (report.get("data") or {}).get("fingerprint") != fingerprint or fingerprint is None:
        return None
    if report.get("model_updated_at") != model_updated_at:
        return None
    return report


def stored_reports(directory: Any) -> list[dict]:
    """Every evaluation report stored beside a model (any table), oldest file first."""
    import json
    from pathlib import Path

    folder = Path(directory) / "evaluations"
    out = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []:
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(report, dict):
            out.append(report)
    return out
