"""Predictions people can join and evaluations that say what they measured (no training needed here)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from specml.data.errors import DataError
from specml.data.files import fingerprint
from specml.data.workspace import Workspace
from specml.evaluation import choose_threshold, classification_details, seen_rows, seen_warning
from specml.predictions import kept_columns, prediction_table, task_columns, threshold_of


def test_binary_predictions_carry_every_class_and_follow_the_threshold():
    p = np.array([0.1, 0.4, 0.6, 0.9])
    cols = task_columns("binary", p, classes=["no", "yes"])
    assert list(cols) == ["probability", "prediction", "prob_no", "prob_yes"]
    assert cols["prediction"].to_pylist() == ["no", "no", "yes", "yes"]
    np.testing.assert_allclose(cols["prob_no"].to_numpy() + cols["prob_yes"].to_numpy(), 1.0)
    low = task_columns("binary", p, classes=["no", "yes"], threshold=0.3)
    assert low["prediction"].to_pylist() == ["no", "yes", "yes", "yes"]
    multi = task_columns("multiclass", np.array([[0.2, 0.5, 0.3]]), classes=["a", "b", "c"])
    assert {"prediction", "prob_a", "prob_b", "prob_c"} <= set(multi) and multi["prediction"].to_pylist() == ["b"]


def test_kept_columns_and_keep_all():
    cols = ["id", "x", "y", "target"]
    assert kept_columns(cols, ["x", "y"], None) == ["id", "target"]
    assert kept_columns(cols, ["x", "y"], ["id"]) == ["id"]
    assert kept_columns(cols, ["x", "y"], None, keep_all=True) == cols
    data = pa.table({"id": [7], "x": [1.0], "y": [2.0], "target": [1]})
    table = prediction_table(data, kept_columns(cols, ["x", "y"], None, keep_all=True),
                             {"target": task_columns("binary", np.array([0.8]), classes=[0, 1])})
    assert table.column_names == ["row_number", "id", "x", "y", "target", "probability", "prediction", "prob_0",
                                  "prob_1"]


def test_threshold_of():
    meta = {"threshold": {"value": 0.31, "method": "f1", "youden": 0.42}}
    assert threshold_of(meta, None) == 0.5
    assert threshold_of(meta, "0.25") == 0.25 and threshold_of(meta, 0.7) == 0.7
    assert threshold_of(meta, "f1") == 0.31 and threshold_of(meta, "youden") == 0.42
    with pytest.raises(DataError, match="between 0 and 1"):
        threshold_of(meta, 1.5)
    with pytest.raises(DataError, match="a number between 0 and 1, f1 or youden; got 'high'"):
        threshold_of(meta, "high")
    with pytest.raises(DataError, match="no threshold chosen on validation rows"):
        threshold_of({}, "f1")


def test_confusion_matrix_support_and_threshold():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.2, 0.7, 0.4])
    d = classification_details("binary", y, p, [0, 1], threshold=0.5)
    assert d["confusion_matrix"] == [[2, 1], [1, 1]] and d["support"] == {"0": 3, "1": 2}
    assert d["threshold"] == 0.5 and d["at_threshold"]["precision"] == 0.5 and d["at_threshold"]["recall"] == 0.5
    d = classification_details("binary", y, p, [0, 1], threshold=0.35)
    assert d["confusion_matrix"] == [[2, 1], [0, 2]]
    scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0, 0, 1]])
    m = classification_details("multiclass", np.array([0, 1, 2, 2]), scores, ["a", "b", "c"])
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]] and m["support"] == {"a": 1, "b": 1, "c": 2}
    assert "threshold" not in m and classification_details("regression", y, p, None) == {}


def test_choose_threshold():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.9])  # every positive above 0.3: a cut at 0.3 is perfect
    assert choose_threshold(y, p, "f1") == pytest.approx(0.3)
    assert choose_threshold(y, p, "youden") == pytest.approx(0.3)
    assert choose_threshold(np.zeros(4), p[:4], "f1") == 0.5  # one class: nothing to choose
    with pytest.raises(ValueError, match="f1, youden"):
        choose_threshold(y, p, "accuracy")


def test_seen_rows_counts_training_rows_in_the_evaluated_table():
    with Workspace(":memory:") as ws:
        ws.write_table("all", pa.table({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1], "id": [1, 2, 3, 4]}))
        ws.write_table("train", pa.table({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]}))
        ws.write_table("test", pa.table({"x": [4.0], "y": [1]}))
        recorded = fingerprint(ws, "train")[1]
        seen = seen_rows(ws, "all", "train", ["x", "y"], recorded)
        assert seen == {"rows": 4, "seen": 3, "training_table": "train", "changed": False}
        said = seen_warning("m", "all", seen)
        assert "3 of the 4 rows of 'all' are rows 'm' trained or validated on (table 'train')" in said
        assert seen_rows(ws, "test", "train", ["x", "y"], recorded)["seen"] == 0
        assert seen_warning("m", "test", seen_rows(ws, "test", "train", ["x", "y"], recorded)) is None
        assert "all rows of 'train'" in seen_warning("m", "train", seen_rows(ws, "train", "train", ["x", "y"]))
        assert seen_rows(ws, "test", "gone", ["x", "y"]) is None
        assert seen_rows(ws, "all", "train", ["x", "y"], "duckdb:0000000000000001")["changed"] is True


def test_evaluation_figures_are_titled_and_reach_the_tensorboard_image_plugin(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from specml.track.figures import evaluation_figures, feature_importance, to_tensorboard

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    paths = evaluation_figures("binary", y, p, tmp_path / "eval", class_names=["no", "yes"], title="m on t",
                               threshold=0.4)
    assert {x.name for x in paths} == {"confusion_matrix.png", "roc.png", "pr.png", "calibration.png",
                                       "threshold.png"}
    paths.append(feature_importance(["a", "b", "c"], [0.2, -0.5, 0.1], tmp_path / "importance.png"))
    assert to_tensorboard(paths, tmp_path / "tb", "evaluate/t") == 6
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()["images"]
    assert set(tags) == {f"evaluate/t/{x.stem}" for x in paths}
    image = events.Images("evaluate/t/calibration")[0]
    assert image.width > 100 and image.height > 100 and image.encoded_image_string.startswith(b"\x89PNG")


def _threshold_by_trying_every_cut(y, p, method):
    """The definition: try every distinct score as the cut (and 0.5); ties go to the cut closest to 0.5."""
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    cuts = np.unique(np.concatenate([p, [0.5]]))
    best, best_value = 0.5, -np.inf
    for cut in cuts[(cuts > 0) & (cuts < 1)]:
        tp, fp = int(np.sum((p > cut) & (y == 1))), int(np.sum((p > cut) & (y == 0)))
        value = (2 * tp / (positives + tp + fp) if tp else 0.0) if method == "f1" else tp / positives - fp / negatives
        if value > best_value + 1e-12 or (abs(value - best_value) <= 1e-12 and abs(cut - 0.5) < abs(best - 0.5)):
            best, best_value = float(cut), value
    return best


@pytest.mark.parametrize("method", ["f1", "youden"])
def test_choose_threshold_equals_trying_every_cut(method):
    rng = np.random.default_rng(11)
    for _ in range(200):
        n = int(rng.integers(2, 50))
        y, p = rng.integers(0, 2, n), np.round(rng.random(n), int(rng.integers(1, 3)))  # ties on purpose
        if 0 < y.sum() < n:
            assert choose_threshold(y, p, method) == _threshold_by_trying_every_cut(y, p, method), (y, p)
