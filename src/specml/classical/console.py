"""What ``specml train --estimator-spec`` prints, in seed 003's sections: the split, stratification,
imbalance, cross-validation folds, a progress display while fitting, time taken, train / validation /
test metrics, where the model was saved. Quiet (``verbose: 0``) prints nothing."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

_NAMES = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1", "auc": "AUC",
          "pr_auc": "PR-AUC", "log_loss": "Log loss", "mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R2"}
_SHOWN = {"binary": ["accuracy", "precision", "recall", "f1", "auc"],
          "multiclass": ["accuracy", "precision", "recall", "f1", "log_loss"],
          "regression": ["rmse", "mae", "r2"]}


def metric_name(key: str) -> str:
    return _NAMES.get(key, key)


class Report:
    def __init__(self, level: int = 1, console: Any = None) -> None:
        from rich.console import Console

        self.level = level
        self.console = console or Console(highlight=False, soft_wrap=True)

    def _print(self, text: str = "") -> None:
        if self.level:
            self.console.print(text)

    def ok(self, text: str) -> None:
        self._print(f"[green]✓[/green] {text}")

    def warn(self, text: str) -> None:
        self._print(f"[yellow]⚠[/yellow] {text}")

    def line(self, text: str = "") -> None:
        self._print(text)

    def split(self, sizes: dict[str, int], method: str, time_column: str | None) -> None:
        total = sum(sizes.values())
        parts = [f"{round(100 * sizes[k] / total)}% {label} ({sizes[k]:,})"
                 for k, label in (("train", "train"), ("validation", "validation"), ("test", "test")) if sizes[k]]
        self.ok(f"Data split: {', '.join(parts)}")
        if method == "stratified":
            self.ok("Stratification applied (class balance maintained)")
        elif method == "time":
            self.ok(f"Time-ordered split on '{time_column}' (earliest rows train, latest test; no shuffling)")
        elif method == "sequential":
            self.ok("Split in table order (shuffle: false)")

    def imbalance(self, counts: dict[str, int], ratio: float, imbalanced: bool) -> None:
        total = sum(counts.values()) or 1
        if imbalanced:
            self.warn("Class imbalance detected (training rows):")
        else:
            self.ok(f"Classes balanced enough (largest/smallest {ratio:.2f}):")
        for cls, n in counts.items():
            self.line(f"  Class {cls}: {n:,} samples ({100 * n / total:.1f}%)")
        if imbalanced:
            self.line(f"  Ratio largest/smallest: {ratio:.2f}")

    def metrics(self, title: str, values: dict, task: str) -> None:
        self.line()
        self.line(f"{title}:")
        for key in _SHOWN[task]:
            v = values.get(key)
            self.line(f"  {metric_name(key)}: {'n/a' if v is None else f'{v:.4f}'}")

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Any]:
        """A rich progress bar (or spinner, with no total) on a terminal; yields ``update(done, total)``."""
        if not self.level or not self.console.is_terminal:
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [SpinnerColumn(), TextColumn(description)]
        if total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)

            def update(done: int, new_total: int | None = None) -> None:
                bar.update(task, completed=done, total=new_total if new_total is not None else total)

            yield update
