"""specml.track.figures: training curves from real runs and evaluation plots, as real PNG files."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from torch import nn

from specml.track.figures import FigureWriter, curve_names, evaluation_figures, write_curves
from specml.train.engine import TensorBatches, Trainer, TrainingError

torch.set_num_threads(1)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_side: int = 200) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000, path
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4), image.shape
    assert min(image.shape[:2]) >= min_side
    assert image[..., :3].std() > 0.01  # something was drawn, not a blank canvas
    return image


def _run(task: str, directory, every: int = 0, epochs: int = 3, criterion=None, probe=None, deferred=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    y = {"binary": (x[:, 0] > 0).float(), "multiclass": (x[:, 0] > 0).long() + (x[:, 1] > 0).long(),
         "regression": x.sum(1)}[task]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3 if task == "multiclass" else 1))
    writer = FigureWriter(directory, every=every, title="tiny", deferred=deferred)
    trainer = Trainer(model, TensorBatches({"input": x[:32]}, y[:32], 8, shuffle=True),
                      TensorBatches({"input": x[32:]}, y[32:], 16), device="cpu", task=task, verbose=False,
                      callbacks=[writer] + ([probe] if probe else []))
    crit = criterion or {"binary": nn.BCEWithLogitsLoss(), "multiclass": nn.CrossEntropyLoss(),
                         "regression": nn.MSELoss()}[task]
    history = trainer.train(epochs, torch.optim.Adam(model.parameters(), lr=1e-2), crit)
    return trainer, history, writer


@pytest.mark.parametrize("task,metrics", [("binary", ["accuracy", "auc"]), ("multiclass", ["accuracy"]),
                                          ("regression", ["rmse", "mae"])])
def test_training_curves_for_each_task(tmp_path, task, metrics):
    _, history, writer = _run(task, tmp_path)
    expected = {"loss.png", *(f"{m}.png" for m in metrics), "lr.png"}
    assert {p.name for p in tmp_path.iterdir()} == expected
    assert {p.name for p in writer.written} == expected
    for path in writer.written:
        _assert_png(path)
    assert curve_names(history) == ["loss", *metrics, "lr"]


def test_deferred_figures_wait_for_draw_and_are_the_same_files(tmp_path):
    """A tracked run's writer draws nothing when training ends; draw() (after the model is saved) starts
    a background thread, wait() joins it, and the files are those an immediate writer draws."""
    now, later = tmp_path / "now", tmp_path / "later"
    _run("binary", now)
    _, _, writer = _run("binary", later, deferred=True)
    assert not later.exists() or not list(later.iterdir())
    writer.draw()
    writer.wait()
    assert sorted(p.name for p in later.iterdir()) == sorted(p.name for p in now.iterdir()) == \
        ["accuracy.png", "auc.png", "loss.png", "lr.png"]
    for path in writer.written:
        _assert_png(path)
    writer.wait()  # nothing pending: returns at once


def test_a_drawing_error_is_raised_by_wait(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the figures directory should be")
    _, _, writer = _run("regression", blocked, deferred=True)
    writer.draw()
    with pytest.raises(OSError):
        writer.wait()


class Seen:
    """A callback after the figure writer: which figures exist at each epoch end."""

    def __init__(self, directory):
        self.directory = directory
        self.at: dict[int, set[str]] = {}

    def on_epoch_end(self, trainer, epoch, logs, improved):
        self.at[epoch] = {p.name for p in self.directory.glob("*.png")}


def test_figures_every_n_epochs(tmp_path):
    seen = Seen(tmp_path)
    _run("regression", tmp_path, every=2, epochs=4, probe=seen)
    assert seen.at[1] == set()
    assert seen.at[2] == {"loss.png", "rmse.png", "mae.png", "lr.png"}


def test_a_failed_run_still_draws_what_it_learned(tmp_path):
    calls = {"n": 0}

    def mse_then_nan(pred, target):
        calls["n"] += 1
        loss = nn.functional.mse_loss(pred.view_as(target), target)
        return loss * float("nan") if calls["n"] > 6 else loss  # epoch 1 is fine (4 + 2 batches)

    with pytest.raises(TrainingError):
        _run("regression", tmp_path, criterion=mse_then_nan)
    assert (tmp_path / "loss.png").exists()
    _assert_png(tmp_path / "loss.png")


def test_write_curves_skips_quantities_with_no_finite_value(tmp_path):
    history = {"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "val_auc": [float("nan"), float("nan")],
               "lr": [0.1, 0.01]}
    written = write_curves(history, tmp_path)
    assert [p.name for p in written] == ["loss.png", "lr.png"]


def test_binary_evaluation_figures(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    prob = np.clip(0.3 * y + 0.7 * rng.random(300), 0, 1)
    paths = evaluation_figures("binary", y, prob, tmp_path, class_names=["healthy", "diabetic"])
    assert [p.name for p in paths] == ["confusion_matrix.png", "roc.png", "pr.png", "calibration.png", "threshold.png"]
    for path in paths:
        _assert_png(path)
    # [N, 2] probabilities are read as column 1, the same figures
    again = evaluation_figures("binary", y, np.stack([1 - prob, prob], 1), tmp_path / "two")
    assert [p.name for p in again] == ["confusion_matrix.png", "roc.png", "pr.png", "calibration.png", "threshold.png"]


def test_binary_with_one_class_has_only_a_confusion_matrix(tmp_path):
    paths = evaluation_figures("binary", np.ones(10), np.linspace(0, 1, 10), tmp_path)
    assert [p.name for p in paths] == ["confusion_matrix.png"]


def test_multiclass_evaluation_figures(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 200)
    scores = rng.random((200, 4)) + np.eye(4)[y]
    prob = scores / scores.sum(1, keepdims=True)
    paths = evaluation_figures("multiclass", y, prob, tmp_path, class_names=["a", "b", "c", "d"])
    assert [p.name for p in paths] == ["confusion_matrix.png", "roc.png"]
    for path in paths:
        _assert_png(path)


def test_regression_evaluation_figures(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.normal(size=150)
    pred = y + 0.3 * rng.normal(size=150)
    paths = evaluation_figures("regression", y, pred.reshape(-1, 1), tmp_path)
    assert [p.name for p in paths] == ["residuals.png", "predicted_vs_true.png"]
    for path in paths:
        _assert_png(path)


@pytest.mark.parametrize("args,message", [
    (("ranking", [0, 1], [0.2, 0.8]), "unknown task 'ranking'"),
    (("binary", [0, 1, 1], [0.2, 0.8]), "y_true has 3 rows, y_score 2"),
    (("multiclass", [0, 1], [0.2, 0.8]), r"multiclass y_score must be \[N, C\]"),
    (("binary", [0, 1], [0.2, 0.8], "x", ["a", "b", "c"]), "2 class names, got 3"),
])
def test_evaluation_figures_reject_bad_input(tmp_path, args, message):
    task, y, s, *rest = args
    with pytest.raises(ValueError, match=message):
        evaluation_figures(task, np.asarray(y), np.asarray(s), tmp_path, *(rest[1:] if rest else []))


@pytest.mark.slow  # a fresh interpreter importing matplotlib
def test_figures_leave_pyplot_alone(tmp_path):
    code = ("import sys, numpy as np; from specml.track.figures import evaluation_figures, write_curves; "
            f"evaluation_figures('regression', np.arange(5.0), np.arange(5.0), {str(tmp_path)!r}); "
            f"write_curves({{'train_loss': [1.0, 0.5]}}, {str(tmp_path)!r}); "
            "print('pyplot' if 'matplotlib.pyplot' in sys.modules else 'clean')")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "clean"
    assert (tmp_path / "loss.png").exists() and (tmp_path / "residuals.png").exists()
