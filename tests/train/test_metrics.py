"""specml.train.metrics: task/metric rules, streaming accumulation against sklearn, evaluate_predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from specml.spec.trainer import METRICS
from specml.train.metrics import (
    ALLOWED,
    DEFAULT_METRICS,
    HIGHER_IS_BETTER,
    StreamingMetrics,
    evaluate_predictions,
    metrics_for,
    monitor_names,
)

torch.set_num_threads(1)

REL = 1e-9


def _batches(n_batches: int, seed: int, make):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(1, 40, (n_batches,), generator=g).tolist()
    return [make(g, b) for b in sizes]


def _feed(sm: StreamingMetrics, batches) -> None:
    for loss, out, tgt in batches:
        assert sm.update(loss, out, tgt) is None


def _weighted_loss(batches) -> float:
    total = sum(float(loss) * out.shape[0] for loss, out, _ in batches)
    return total / sum(out.shape[0] for _, out, _ in batches)


# ------------------------------------------------------------------------------------ task rules


def test_tables_cover_the_spec_metrics():
    assert set(HIGHER_IS_BETTER) >= set(METRICS)
    assert {m for ms in ALLOWED.values() for m in ms} == set(METRICS)
    for task, ms in DEFAULT_METRICS.items():
        assert set(ms) <= set(ALLOWED[task])
    assert HIGHER_IS_BETTER["accuracy"] and HIGHER_IS_BETTER["auc"] and HIGHER_IS_BETTER["r2"]
    assert not HIGHER_IS_BETTER["log_loss"] and not HIGHER_IS_BETTER["mse"] and not HIGHER_IS_BETTER["mae"]
    assert not HIGHER_IS_BETTER["loss"]


def test_metrics_for_defaults_and_requests():
    assert metrics_for("binary", None) == ["accuracy", "auc"]
    assert metrics_for("multiclass", None) == ["accuracy"]
    assert metrics_for("regression", None) == ["rmse", "mae"]
    metrics_for("binary", None).append("f1")          # a copy, not the table itself
    assert DEFAULT_METRICS["binary"] == ["accuracy", "auc"]
    assert metrics_for("binary", ["f1", "pr_auc", "f1"]) == ["f1", "pr_auc"]
    assert metrics_for("regression", ["r2"]) == ["r2"]
    assert metrics_for("multiclass", []) == []


@pytest.mark.parametrize("task, metric", [("binary", "mse"), ("regression", "accuracy"),
                                          ("regression", "auc"), ("multiclass", "r2")])
def test_metrics_for_rejects_metric_of_another_task(task, metric):
    with pytest.raises(ValueError, match=rf"'{metric}' does not apply to a {task} task"):
        metrics_for(task, [metric])


def test_metrics_for_rejects_unknown_metric_and_task():
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy'.*did you mean 'accuracy'"):
        metrics_for("binary", ["acuracy"])
    with pytest.raises(ValueError, match="unknown task 'binnary'"):
        metrics_for("binnary", None)


def test_monitor_names():
    assert monitor_names("binary", ["accuracy", "auc"], True) == [
        "train_loss", "val_loss", "train_accuracy", "train_auc", "val_accuracy", "val_auc"]
    assert monitor_names("regression", None, False) == ["train_loss", "train_rmse", "train_mae"]
    with pytest.raises(ValueError):
        monitor_names("regression", ["f1"], True)


# ------------------------------------------------------------------------------------- streaming


def test_update_is_lazy_and_loss_is_exact_weighted_mean():
    sm = StreamingMetrics("regression", ["mse"], logits=False, device="cpu")
    losses, sizes = [0.5, 2.0, 1.25], [4, 1, 3]
    for loss, b in zip(losses, sizes):
        out = torch.zeros(b)
        ret = sm.update(torch.tensor(loss), out, torch.ones(b))
        assert ret is None
        assert isinstance(sm.loss_sum_tensor(), torch.Tensor)
        assert sm.loss_sum_tensor().device.type == "cpu"
    assert sm.loss_sum_tensor().item() == pytest.approx(0.5 * 4 + 2.0 + 1.25 * 3, rel=1e-12)
    res = sm.compute()
    assert res["loss"] == pytest.approx((0.5 * 4 + 2.0 + 1.25 * 3) / 8, rel=1e-12)
    assert res["mse"] == pytest.approx(1.0)
    sm.reset()
    assert sm.loss_sum_tensor().item() == 0.0
    assert math.isnan(sm.compute()["loss"])


def test_update_does_not_touch_the_host(monkeypatch):
    """update() must not call .item()/.cpu()/.tolist()/.numpy() (each a host sync on a GPU)."""
    def boom(*a, **k):
        raise AssertionError("host transfer in update()")

    sm = StreamingMetrics("binary", ["accuracy", "auc", "f1"], logits=True, device="cpu")
    out, tgt, loss = torch.randn(8, 1), torch.randint(0, 2, (8, 1)).float(), torch.tensor(0.3)
    for name in ("item", "cpu", "tolist", "numpy"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    sm.update(loss, out, tgt)
    sm.update(loss, out, tgt)
    monkeypatch.undo()
    assert sm.compute()["loss"] == pytest.approx(0.3)


def test_update_keeps_no_graph():
    w = torch.randn(3, requires_grad=True)
    x = torch.randn(5, 3)
    out = x @ w
    sm = StreamingMetrics("regression", ["r2", "mse"], logits=False, device="cpu")
    sm.update(out.pow(2).mean(), out, torch.randn(5))
    assert not sm.loss_sum_tensor().requires_grad
    assert all(not o.requires_grad for o in sm._outputs)


def _binary_batch(logits: bool):
    def make(g, b):
        logit = torch.randn(b, generator=g) * 2
        y = (torch.rand(b, generator=g) < torch.sigmoid(logit + torch.randn(b, generator=g))).float()
        out = logit if logits else torch.sigmoid(logit)
        if b % 2:                           # mix [B] and [B, 1] outputs/targets
            out, y = out[:, None], y[:, None]
        return torch.rand((), generator=g), out, y
    return make


@pytest.mark.parametrize("logits", [True, False])
def test_binary_matches_sklearn(logits):
    batches = _batches(60, 1 + logits, _binary_batch(logits))
    wanted = ALLOWED["binary"]
    sm = StreamingMetrics("binary", wanted, logits=logits, device=torch.device("cpu"))
    _feed(sm, batches)
    res = sm.compute()
    assert list(res) == ["loss", *wanted]

    out = torch.cat([o.reshape(-1) for _, o, _ in batches]).double().numpy()
    y = torch.cat([t.reshape(-1) for _, _, t in batches]).numpy().astype(int)
    prob = 1 / (1 + np.exp(-out)) if logits else out
    pred = (prob > 0.5).astype(int)
    assert 0 < y.sum() < len(y)
    expected = {
        "loss": _weighted_loss(batches),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "auc": skm.roc_auc_score(y, prob),
        "pr_auc": skm.average_precision_score(y, prob),
        "log_loss": skm.log_loss(y, prob),
    }
    assert res == pytest.approx(expected, rel=1e-6)
    assert 0.5 < res["auc"] < 1.0


def test_binary_streaming_twice_after_reset():
    batches = _batches(10, 5, _binary_batch(True))
    sm = StreamingMetrics("binary", ["accuracy", "auc"], logits=True, device="cpu")
    _feed(sm, batches)
    first = sm.compute()
    sm.reset()
    _feed(sm, batches[:3])
    sm.reset()
    _feed(sm, batches)
    assert sm.compute() == first


@pytest.mark.parametrize("logits", [True, False])
def test_multiclass_matches_sklearn(logits):
    n_classes = 4

    def make(g, b):
        y = torch.randint(0, n_classes, (b,), generator=g)
        scores = torch.randn(b, n_classes, generator=g) + 1.5 * torch.nn.functional.one_hot(y, n_classes)
        out = scores if logits else torch.softmax(scores, dim=1)
        return torch.rand((), generator=g) * 3, out, y

    batches = _batches(50, 7, make)
    wanted = ALLOWED["multiclass"]
    sm = StreamingMetrics("multiclass", wanted, logits=logits, device="cpu")
    _feed(sm, batches)
    res = sm.compute()

    scores = torch.cat([o for _, o, _ in batches]).double()
    prob = (torch.softmax(scores, dim=1) if logits else scores / scores.sum(1, keepdim=True)).numpy()
    y = torch.cat([t for _, _, t in batches]).numpy()
    pred = prob.argmax(1)
    expected = {
        "loss": _weighted_loss(batches),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro"),
        "recall": skm.recall_score(y, pred, average="macro"),
        "f1": skm.f1_score(y, pred, average="macro"),
        "auc": skm.roc_auc_score(y, prob, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y, prob),
    }
    assert res == pytest.approx(expected, rel=1e-6)
    assert 0.4 < res["accuracy"] < 1.0


def test_multiclass_missing_class_gives_nan_auc_not_error():
    sm = StreamingMetrics("multiclass", ["accuracy", "auc", "log_loss"], logits=True, device="cpu")
    sm.update(torch.tensor(1.0), torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]]), torch.tensor([0, 1]))
    res = sm.compute()
    assert res["accuracy"] == 1.0
    assert math.isnan(res["auc"])
    assert res["log_loss"] == pytest.approx(skm.log_loss([0, 1], torch.softmax(
        torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=torch.float64), 1).numpy(), labels=[0, 1, 2]))


@pytest.mark.parametrize("k", [1, 3])
def test_regression_matches_sklearn(k):
    coef = torch.linspace(0.5, 2.0, k)

    def make(g, b):
        y = torch.randn(b, k, generator=g) * coef + coef
        out = y + 0.5 * torch.randn(b, k, generator=g)
        if k == 1 and b % 2:
            out, y = out.reshape(-1), y.reshape(-1)
        return torch.rand((), generator=g), out, y

    batches = _batches(40, 11 + k, make)
    wanted = ALLOWED["regression"]
    sm = StreamingMetrics("regression", wanted, logits=False, device="cpu")
    _feed(sm, batches)
    res = sm.compute()

    out = torch.cat([o.reshape(o.shape[0], k) for _, o, _ in batches]).double().numpy()
    y = torch.cat([t.reshape(t.shape[0], k) for _, _, t in batches]).double().numpy()
    if k == 1:
        out, y = out.ravel(), y.ravel()
    expected = {
        "loss": _weighted_loss(batches),
        "mse": skm.mean_squared_error(y, out),
        "rmse": skm.root_mean_squared_error(y, out),
        "mae": skm.mean_absolute_error(y, out),
        "r2": skm.r2_score(y, out),
    }
    assert res == pytest.approx(expected, rel=1e-6)
    if k > 1:   # per-output rmse averaged, as sklearn's uniform_average does — not sqrt(mse)
        assert res["rmse"] != pytest.approx(math.sqrt(res["mse"]), rel=1e-6)


@pytest.mark.parametrize("task,metrics", [("binary", ["accuracy"]), ("multiclass", ["accuracy"]),
                                          ("regression", ["mse", "rmse", "mae"])])
def test_streamed_metrics_fold_as_they_go_with_the_values_of_keeping_everything(monkeypatch, task, metrics):
    """A training split's meter (streamed metrics only) folds its outputs into running sums every FOLD_VALUES
    values: the memory an epoch holds stays bounded, and the values are those of the meter that keeps every
    output (a non-streamed metric asked for beside them)."""
    from specml.train import metrics as metrics_module

    monkeypatch.setattr(metrics_module, "FOLD_VALUES", 100)  # many folds, and a partial one at compute()

    def make(g, b):
        if task == "binary":
            return _binary_batch(True)(g, b)
        if task == "multiclass":
            return torch.rand((), generator=g), torch.randn(b, 3, generator=g), torch.randint(0, 3, (b,), generator=g)
        y = torch.randn(b, 2, generator=g)
        return torch.rand((), generator=g), y + torch.randn(b, 2, generator=g), y

    batches = _batches(80, 21, make)
    streamed = StreamingMetrics(task, metrics, logits=True, device="cpu")
    kept = StreamingMetrics(task, [*metrics, "r2" if task == "regression" else "log_loss"], logits=True, device="cpu")
    for loss, out, tgt in batches:
        streamed.update(loss, out, tgt)
        kept.update(loss, out, tgt)
    assert sum(o.numel() for o in streamed._outputs) < 100 + 3 * 40, "a streamed meter holds at most one fold"
    res, reference = streamed.compute(), kept.compute()
    assert res == pytest.approx({k: reference[k] for k in res}, rel=1e-12)
    streamed.reset()
    _feed(streamed, batches)
    assert streamed.compute() == res


def test_streaming_shape_errors():
    sm = StreamingMetrics("binary", ["accuracy"], logits=True, device="cpu")
    with pytest.raises(ValueError):
        sm.update(torch.tensor(0.0), torch.zeros(4), torch.zeros(5))
    sm = StreamingMetrics("multiclass", ["accuracy"], logits=True, device="cpu")
    with pytest.raises(ValueError):
        sm.update(torch.tensor(0.0), torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        StreamingMetrics("regression", ["accuracy"], logits=False, device="cpu")


# -------------------------------------------------------------------------- evaluate_predictions


def test_evaluate_binary_perfect_and_all_wrong():
    y = np.array([0, 1, 1, 0, 1])
    perfect = evaluate_predictions("binary", y, np.array([0.1, 0.9, 0.8, 0.2, 0.7]))
    assert set(perfect) == set(ALLOWED["binary"])
    for m in ("accuracy", "precision", "recall", "f1", "auc", "pr_auc"):
        assert perfect[m] == 1.0, m
    assert perfect["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.8, 0.8, 0.7])))

    wrong = evaluate_predictions("binary", y, np.array([0.9, 0.1, 0.2, 0.8, 0.3]))
    assert wrong["accuracy"] == 0.0 and wrong["recall"] == 0.0 and wrong["auc"] == 0.0
    assert wrong["precision"] == 0.0
    assert wrong["log_loss"] > perfect["log_loss"]


def test_evaluate_binary_known_values_and_labels():
    # TP=2 (0.9, 0.6), FP=1 (0.7), FN=1 (0.4), TN=1 (0.2)
    y = np.array([1, 1, 0, 1, 0])
    s = np.array([0.9, 0.6, 0.7, 0.4, 0.2])
    r = evaluate_predictions("binary", y, s)
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(2 / 3)
    assert r["auc"] == pytest.approx(4 / 6)   # positive/negative pairs ranked right: 4 of 6
    # string labels with classes=[negative, positive], and [N, 2] probabilities
    r2 = evaluate_predictions("binary", np.array(["yes", "yes", "no", "yes", "no"]),
                              np.stack([1 - s, s], axis=1), classes=["no", "yes"])
    assert r2 == pytest.approx(r)


def test_evaluate_binary_undefined_is_nan():
    r = evaluate_predictions("binary", np.array([1, 1, 1]), np.array([0.9, 0.2, 0.6]))
    assert math.isnan(r["auc"])
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 3)
    r = evaluate_predictions("binary", np.array([0, 0]), np.array([0.1, 0.2]))
    assert math.isnan(r["auc"]) and math.isnan(r["pr_auc"]) and math.isnan(r["precision"])
    assert r["accuracy"] == 1.0
    assert math.isfinite(r["log_loss"])


def test_evaluate_multiclass():
    y = np.array([0, 1, 2, 2, 1])
    onehot = np.eye(3)[y] * 0.8 + 0.1 * (1 - np.eye(3)[y])
    r = evaluate_predictions("multiclass", y, onehot)
    assert set(r) == set(ALLOWED["multiclass"])
    assert r["accuracy"] == 1.0 and r["f1"] == 1.0 and r["auc"] == 1.0
    assert r["log_loss"] == pytest.approx(-math.log(0.8))

    wrong = evaluate_predictions("multiclass", y, np.roll(onehot, 1, axis=1))
    assert wrong["accuracy"] == 0.0 and wrong["recall"] == 0.0

    # labels via classes; a class absent from y_true -> auc nan, others still defined
    names = np.array(["a", "b", "c"])
    r = evaluate_predictions("multiclass", names[[0, 1, 1]], onehot[:3][[0, 1, 1]], classes=["a", "b", "c"])
    assert r["accuracy"] == 1.0
    assert math.isnan(r["auc"])
    assert r["log_loss"] == pytest.approx(-math.log(0.8))


def test_evaluate_multiclass_known_macro():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 1, 1, 1])
    r = evaluate_predictions("multiclass", y, np.eye(2)[pred] * 0.6 + 0.2)
    assert r["accuracy"] == 0.75
    assert r["precision"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert r["recall"] == pytest.approx((0.5 + 1.0) / 2)


def test_evaluate_regression():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert evaluate_predictions("regression", y, y.copy()) == {"mse": 0.0, "rmse": 0.0, "mae": 0.0, "r2": 1.0}
    r = evaluate_predictions("regression", y, y + np.array([1.0, -1.0, 1.0, -1.0]))
    assert r["mse"] == 1.0 and r["rmse"] == 1.0 and r["mae"] == 1.0
    assert r["r2"] == pytest.approx(1 - 4 / 5)
    # multi-output: uniform average over outputs
    y2 = np.array([[0.0, 0.0], [2.0, 4.0]])
    p2 = np.array([[0.0, 2.0], [2.0, 4.0]])
    r = evaluate_predictions("regression", y2, p2)
    assert r["mse"] == pytest.approx((0 + 2) / 2)
    assert r["rmse"] == pytest.approx((0 + math.sqrt(2)) / 2)
    assert r["mae"] == pytest.approx((0 + 1) / 2)
    # constant target: r2 undefined
    assert math.isnan(evaluate_predictions("regression", np.ones(3), np.array([1.0, 2.0, 0.0]))["r2"])


def test_evaluate_length_mismatch_raises():
    with pytest.raises(ValueError):
        evaluate_predictions("regression", np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        evaluate_predictions("binary", np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("decimals", [None, 2, 0])
def test_binary_auc_is_sklearns_with_and_without_ties(decimals):
    """The rank statistic (tied scores share their mean rank) is roc_auc_score, ties (rounded scores) or none."""
    from specml.train.metrics import binary_auc

    rng = np.random.default_rng(7)
    y = (rng.random(5003) > 0.6).astype(np.int64)
    prob = rng.random(5003) * 0.5 + 0.4 * y
    if decimals is not None:
        prob = np.round(prob, decimals)
    assert binary_auc(y, prob) == pytest.approx(skm.roc_auc_score(y, prob), rel=1e-12)
    assert binary_auc(np.array([0, 1, 1]), np.array([0.3, 0.3, 0.3])) == 0.5  # one tie group
