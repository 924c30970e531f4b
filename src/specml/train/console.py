"""What a training run prints: seed 000's per-epoch lines, and a rich progress bar on a terminal.

A duck-typed callback of :class:`specml.train.engine.Trainer`; it reads the running loss only when
the trainer hands it over (once per ``log_interval`` batches), never per step.
"""

from __future__ import annotations

from typing import Any

_NAMES = {"accuracy": "Acc", "auc": "AUC", "pr_auc": "PR-AUC", "f1": "F1", "precision": "Prec", "recall": "Rec",
          "log_loss": "LogLoss", "mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R2"}


class ConsoleLogger:
    def __init__(self, progress: bool | None = None, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(highlight=False)
        self.progress = self.console.is_terminal if progress is None else progress
        self._bar = None
        self._task = None

    # -- progress bar -------------------------------------------------------------------------------

    def on_epoch_start(self, trainer, epoch: int, num_epochs: int, batches: int | None) -> None:
        if not self.progress:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn(f"Epoch {epoch}/{num_epochs}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=self.console,
                             transient=True)
        self._bar.start()
        self._task = self._bar.add_task("train", total=batches, loss="")

    def on_batches(self, trainer, epoch: int, batch: int, loss_sum) -> None:
        if self._bar is not None:
            seen = max(batch * _batch_size(trainer), 1)
            self._bar.update(self._task, completed=batch, loss=f"loss {loss_sum.item() / seen:.4f}")

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # -- per-epoch lines (seed 000's form) ----------------------------------------------------------

    def on_epoch_end(self, trainer, epoch: int, logs: dict, improved: bool) -> None:
        self._stop_bar()
        total = trainer._num_epochs if hasattr(trainer, "_num_epochs") else None
        head = f"Epoch {epoch}/{total}:" if total else f"Epoch {epoch}:"
        self.console.print(head + ("  [green]*[/green]" if improved else ""))
        for split, label in (("train", "Train"), ("val", "Val")):
            if f"{split}_loss" not in logs:
                continue
            parts = [f"{label + ' Loss:':<12}{logs[f'{split}_loss']:.4f}"]
            for key, value in logs.items():
                if key.startswith(split + "_") and key != f"{split}_loss":
                    name = _NAMES.get(key[len(split) + 1:], key[len(split) + 1:])
                    parts.append(f"{label} {name}: {value:.4f}")
            self.console.print("  " + "  ".join(parts))

    def on_early_stop(self, trainer, epoch: int, best_epoch: int | None, best_value: float | None) -> None:
        self.console.print(f"Early stopping at epoch {epoch}: {trainer.monitor} has not improved since epoch "
                           f"{best_epoch} ({best_value:.4f}); restoring the best weights.")

    def on_exception(self, trainer, error: BaseException) -> None:
        self._stop_bar()

    def on_train_end(self, trainer, history: dict, best_epoch: int | None, best_value: float | None) -> None:
        self._stop_bar()
        if best_epoch is not None:
            self.console.print(f"Best {trainer.monitor}: {best_value:.4f} at epoch {best_epoch}")


def _batch_size(trainer) -> int:
    loader = trainer.train_loader
    return getattr(loader, "batch_size", None) or 1
