"""Figures of a run, as PNG files: training curves, and evaluation plots.

* :class:`FigureWriter` (a duck-typed :class:`specml.train.engine.Trainer` callback, rank 0 only)
  writes ``loss.png``, one ``<metric>.png`` per metric (train and val curves over epochs) and
  ``lr.png``, at the end of training and every ``every`` epochs (0: only at the end).
* :func:`evaluation_figures` draws, from finished predictions: a confusion matrix, ROC and PR curves
  (binary); a confusion matrix and one-vs-rest ROC curves (multiclass); residuals against predictions
  and predictions against truth (regression). Curves come from :mod:`sklearn.metrics`.

Drawing uses ``matplotlib.figure.Figure`` with the Agg canvas directly, never pyplot: no display is
needed, and no global matplotlib state (backend, open figures) is touched. Files are written atomically.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SPLITS = ("train", "val")
_LABELS = {"loss": "Loss", "accuracy": "Accuracy", "auc": "ROC AUC", "pr_auc": "PR AUC", "f1": "F1",
           "precision": "Precision", "recall": "Recall", "log_loss": "Log loss", "mse": "MSE", "rmse": "RMSE",
           "mae": "MAE", "r2": "R²", "lr": "Learning rate"}


def _figure(width: float = 6.4, height: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    from specml.data.files import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return path


# ----------------------------------------------------------------------------------------------
# training curves


def curve_names(history: dict[str, list]) -> list[str]:
    """The quantities in a history that get a figure: ``loss``, then each metric, then ``lr``."""
    names = ["loss"] if any(f"{s}_loss" in history for s in SPLITS) else []
    for key in history:
        split, _, name = key.partition("_")
        if split in SPLITS and name and name not in names:
            names.append(name)
    if "lr" in history:
        names.append("lr")
    return names


def write_curves(history: dict[str, list], directory: str | Path, title: str | None = None,
                 suffix: str = "") -> list[Path]:
    """One PNG per quantity of ``history`` (``loss.png``, ``<metric>.png``, ``lr.png``; ``suffix`` goes
    before ``.png``, e.g. ``-e0003`` to keep an epoch's figures); the paths written."""
    directory = Path(directory)
    written = []
    for name in curve_names(history):
        fig = _figure()
        ax = fig.add_subplot()
        keys = ["lr"] if name == "lr" else [f"{s}_{name}" for s in SPLITS if f"{s}_{name}" in history]
        drawn = False
        for key in keys:
            values = np.asarray([np.nan if v is None else v for v in history[key]], dtype=np.float64)
            if values.size == 0 or not np.isfinite(values).any():
                continue
            epochs = np.arange(1, values.size + 1)
            label = "learning rate" if key == "lr" else key.partition("_")[0]
            ax.plot(epochs, values, marker="o" if values.size <= 30 else None, markersize=3, label=label)
            drawn = True
        if not drawn:
            continue
        if name == "lr" and np.nanmin(np.asarray(history["lr"], dtype=np.float64)) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_LABELS.get(name, name))
        ax.set_title(f"{title}: {_LABELS.get(name, name)}" if title else _LABELS.get(name, name))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        if name != "lr":
            ax.legend()
        written.append(_save(fig, directory / f"{name}{suffix}.png"))
    return written


class FigureWriter:
    """Write the training curves into ``directory`` at train end, and every ``every`` epochs (0: end only).
    ``keep``: each epoch's redraw is kept as ``<name>-eNNNN.png`` (every epoch when ``every`` is 0).

    ``deferred=True`` (a tracked run): the end-of-training curves are drawn by :meth:`draw` in a background
    thread, started when training ends, while the model is saved; :meth:`wait` joins it
    (:class:`specml.track.lifecycle.RunLifecycle` waits when the run closes). Drawing (about a second, most
    of it importing matplotlib, which so happens after training, when the training rows are let go: not on
    every epoch's memory) is so off the path to the result. The files are the same either way.
    """

    def __init__(self, directory: str | Path, every: int = 0, title: str | None = None, keep: bool = False, *,
                 deferred: bool = False) -> None:
        if every < 0:
            raise ValueError(f"every must be 0 (only at the end) or a positive number of epochs, got {every}")
        self.directory = Path(directory)
        self.every = every or (1 if keep else 0)
        self.title = title
        self.keep = keep
        self.deferred = deferred
        self.written: list[Path] = []
        self._pending: dict[str, list] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict, improved: bool) -> None:
        if self.every and epoch % self.every == 0:
            self.written = write_curves(trainer.history, self.directory, self.title,
                                        f"-e{epoch:04d}" if self.keep else "")

    def on_train_end(self, trainer: Any, history: dict, best_epoch: int | None, best_value: float | None) -> None:
        if self.deferred:  # drawn in the background while the model is saved (see draw)
            self._pending = {k: list(v) for k, v in history.items()}
            self.draw()
        else:
            self.written = write_curves(history, self.directory, self.title)

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self._pending = None
        if trainer.history:  # what was learned up to the failure
            self.written = write_curves(trainer.history, self.directory, self.title)

    def draw(self) -> None:
        """Start drawing the deferred end-of-training curves in a background thread (see :meth:`wait`)."""
        history, self._pending = self._pending, None
        if history is None or self._thread is not None:
            return

        def run() -> None:
            try:
                self.written = write_curves(history, self.directory, self.title)
            except BaseException as err:  # noqa: BLE001 - raised again by wait()
                self._error = err

        self._thread = threading.Thread(target=run, name="specml-figures")
        self._thread.start()

    def wait(self) -> None:
        """Draw what is still deferred and wait until the curves are written; a drawing error is raised here."""
        self.draw()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


# ----------------------------------------------------------------------------------------------
# evaluation figures


def evaluation_figures(task: str, y_true: Any, y_score: Any, directory: str | Path,
                       class_names: Sequence[str] | None = None, title: str | None = None,
                       threshold: float = 0.5) -> list[Path]:
    """Evaluation plots of finished predictions, written into ``directory``; the paths written.

    ``y_score`` as :func:`specml.api.scores` returns it: the positive-class probability (binary, [N] or
    [N, 2]), class probabilities [N, C] (multiclass), or predicted values (regression). ``y_true``: 0/1,
    class ids 0..C-1, or values. Binary predictions are positive above ``threshold``; binary tasks also
    get a calibration curve and precision / recall / F1 against the threshold. ``title`` (e.g. "model on
    table") heads every figure.
    """
    paths = _evaluation_figures(task, y_true, y_score, Path(directory), class_names, threshold)
    if title:
        _retitle(paths, title)
    return paths


def _retitle(paths: list[Path], title: str) -> None:
    """Redraw nothing: stamp ``title`` above each PNG (a strip added on top)."""
    from matplotlib.image import imread

    for path in paths:
        image = imread(path)
        height, width = image.shape[:2]
        fig = _figure(width / 100, height / 100 + 0.35)
        ax = fig.add_axes((0, 0, 1, height / (height + 35)))
        ax.imshow(image)
        ax.axis("off")
        fig.text(0.5, 1 - 12 / (height + 35), title, ha="center", va="top", fontsize=10, weight="bold")
        fig.set_layout_engine(None)
        _save(fig, path)


def _evaluation_figures(task: str, y_true: Any, y_score: Any, directory: Path,
                        class_names: Sequence[str] | None, threshold: float) -> list[Path]:
    from specml.spec.metrics import TASKS

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    directory = Path(directory)
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape[0] != y_score.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} rows, y_score {y_score.shape[0]}")
    if task == "regression":
        return _regression_figures(y_true.astype(np.float64).reshape(-1), y_score.reshape(-1), directory)
    if task == "binary":
        if y_score.ndim == 2 and y_score.shape[1] == 2:
            y_score = y_score[:, 1]
        prob = y_score.reshape(-1)
        y = (y_true.astype(np.float64).reshape(-1) > 0.5).astype(np.int64)
        names = list(class_names) if class_names is not None else ["0", "1"]
        if len(names) != 2:
            raise ValueError(f"a binary task has 2 class names, got {len(names)}")
        paths = [_confusion(y, (prob > threshold).astype(np.int64), names, directory / "confusion_matrix.png")]
        if len(np.unique(y)) == 2:  # curves need both classes
            paths.append(_roc(y, prob, directory / "roc.png"))
            paths.append(_pr(y, prob, directory / "pr.png"))
            paths.append(_calibration(y, prob, directory / "calibration.png"))
            paths.append(_thresholds(y, prob, threshold, directory / "threshold.png"))
        return paths
    # multiclass
    if y_score.ndim != 2:
        raise ValueError(f"multiclass y_score must be [N, C] probabilities, got shape {y_score.shape}")
    n = y_score.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names but y_score has {n} columns")
    y = y_true.reshape(-1).astype(np.int64)
    paths = [_confusion(y, y_score.argmax(axis=1), names, directory / "confusion_matrix.png")]
    if len(np.unique(y)) > 1:
        paths.append(_roc_ovr(y, y_score, names, directory / "roc.png"))
    return paths


def _confusion(y: np.ndarray, pred: np.ndarray, names: list[str], path: Path) -> Path:
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, pred, labels=list(range(len(names))))
    size = max(4.0, 0.6 * len(names) + 2.5)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, labels=names, rotation=45 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_yticks(ticks, labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")
    if len(names) <= 30:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, f"{cm[i, j]:d}", ha="center", va="center",
                        color="white" if cm[i, j] > threshold else "black", fontsize=9)
    return _save(fig, path)


def _roc(y: np.ndarray, prob: np.ndarray, path: Path) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, prob)
    fig = _figure(5.2, 4.8)
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(y, prob):.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    _square(ax, "false positive rate", "true positive rate", "ROC curve")
    return _save(fig, path)


def _pr(y: np.ndarray, prob: np.ndarray, path: Path) -> Path:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, prob)
    fig = _figure(5.2, 4.8)
    ax = fig.add_subplot()
    ax.step(recall, precision, where="post", label=f"AP {average_precision_score(y, prob):.3f}")
    ax.axhline(y.mean(), linestyle="--", color="grey", linewidth=1, label="base rate")
    _square(ax, "recall", "precision", "Precision-recall curve")
    return _save(fig, path)


def _calibration(y: np.ndarray, prob: np.ndarray, path: Path, bins: int = 10) -> Path:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    mean_p, share, counts = [], [], []
    for b in range(bins):
        inside = which == b
        if inside.any():
            mean_p.append(prob[inside].mean())
            share.append(y[inside].mean())
            counts.append(int(inside.sum()))
    fig = _figure(5.2, 4.8)
    ax = fig.add_subplot()
    ax.plot(mean_p, share, marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    _square(ax, "mean predicted probability", "share of positives", "Calibration curve")
    return _save(fig, path)


def _thresholds(y: np.ndarray, prob: np.ndarray, threshold: float, path: Path) -> Path:
    cuts = np.linspace(0.01, 0.99, 99)
    positives = max(int(y.sum()), 1)
    precision, recall, f1 = [], [], []
    for cut in cuts:
        pred = prob > cut
        tp = int(np.sum(pred & (y == 1)))
        predicted = int(pred.sum())
        p = tp / predicted if predicted else 1.0
        r = tp / positives
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    fig = _figure(5.6, 4.4)
    ax = fig.add_subplot()
    ax.plot(cuts, precision, label="precision")
    ax.plot(cuts, recall, label="recall")
    ax.plot(cuts, f1, label="F1")
    ax.axvline(threshold, linestyle="--", color="grey", linewidth=1, label=f"threshold {threshold:g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("threshold on P(positive)")
    ax.set_ylabel("value")
    ax.set_title("Precision, recall and F1 against the threshold")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def feature_importance(names: Sequence[str], values: Any, path: str | Path, title: str | None = None,
                       top: int = 30) -> Path:
    """A horizontal bar chart of the ``top`` largest importances (absolute values), largest on top."""
    values = np.abs(np.asarray(values, dtype=np.float64).reshape(-1))
    order = np.argsort(values)[::-1][:top][::-1]
    fig = _figure(6.4, max(2.5, 0.28 * len(order) + 1.2))
    ax = fig.add_subplot()
    ax.barh([str(names[i]) for i in order], values[order], color="#4a6fa5")
    ax.set_xlabel("importance")
    ax.set_title(title or "Feature importance")
    ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, Path(path))


def _roc_ovr(y: np.ndarray, prob: np.ndarray, names: list[str], path: Path) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = _figure(5.8, 5.0)
    ax = fig.add_subplot()
    for c, name in enumerate(names):
        positive = (y == c).astype(np.int64)
        if positive.min() == positive.max():  # a class absent (or alone) has no curve
            continue
        fpr, tpr, _ = roc_curve(positive, prob[:, c])
        ax.plot(fpr, tpr, linewidth=1.2, label=f"{name} (AUC {roc_auc_score(positive, prob[:, c]):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    _square(ax, "false positive rate", "true positive rate", "ROC curves (one vs rest)")
    return _save(fig, path)


def _square(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right" if "ROC" in title else "best", fontsize=8)


def _regression_figures(y: np.ndarray, pred: np.ndarray, directory: Path) -> list[Path]:
    if y.size != pred.size:
        raise ValueError(f"y_true has {y.size} values, y_score {pred.size}")
    residual = y - pred
    alpha = 0.6 if y.size <= 2000 else max(0.05, 0.6 * math.sqrt(2000 / y.size))

    fig = _figure()
    ax = fig.add_subplot()
    ax.scatter(pred, residual, s=8, alpha=alpha)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals")
    ax.grid(True, alpha=0.3)
    paths = [_save(fig, directory / "residuals.png")]

    fig = _figure(5.2, 4.8)
    ax = fig.add_subplot()
    ax.scatter(y, pred, s=8, alpha=alpha)
    both = np.concatenate([y, pred])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = float(both.min()), float(both.max())
        ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="predicted = true")
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs true")
    ax.grid(True, alpha=0.3)
    paths.append(_save(fig, directory / "predicted_vs_true.png"))
    return paths


def to_tensorboard(paths: Sequence[str | Path], logdir: str | Path, prefix: str, step: int = 0) -> int:
    """Add PNG figures to TensorBoard's image plugin: one image each, tagged ``<prefix>/<file stem>``, in an
    event file under ``logdir`` (a run's ``tensorboard/`` folder). Torch-free; the number of images added."""
    import struct
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    values = []
    for path in paths:
        data = Path(path).read_bytes()
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            continue
        width, height = struct.unpack(">II", data[16:24])
        values.append(Summary.Value(tag=f"{prefix}/{Path(path).stem}", image=Summary.Image(
            height=height, width=width, colorspace=4, encoded_image_string=data)))
    if not values:
        return 0
    Path(logdir).mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    try:
        writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))
    finally:
        writer.close()
    return len(values)
