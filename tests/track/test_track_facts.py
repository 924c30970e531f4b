"""specml.track.facts: events.jsonl and scalars.csv written by real training runs of the engine."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import pytest
import torch
from torch import nn

from specml.track.facts import (
    EVENT_FIELDS,
    SCHEMA_VERSION,
    FactsWriter,
    read_events,
    read_scalars,
    scalars_header,
)
from specml.train.engine import EarlyStopping, TensorBatches, Trainer, TrainingError
from specml.train.metrics import metrics_for

torch.set_num_threads(1)

TAIL = ["lr", "epoch_time_s", "throughput", "max_memory_mib"]  # the last columns of every scalars.csv


def _data(task: str, n: int = 48, d: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    if task == "binary":
        y = (x[:, 0] + 0.3 * x[:, 1] > 0).float()
    elif task == "multiclass":
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    else:
        y = x @ torch.arange(1.0, d + 1) + 0.1 * torch.randn(n, generator=g)
    return x, y


def _trainer(task: str, callbacks: list, *, metrics=None, val: bool = True, seed: int = 0, **kwargs) -> Trainer:
    x, y = _data(task, seed=seed)
    torch.manual_seed(seed)
    out = 3 if task == "multiclass" else 1
    model = nn.Sequential(nn.Linear(x.shape[1], 8), nn.ReLU(), nn.Linear(8, out))
    train = TensorBatches({"input": x[:32]}, y[:32], 8, shuffle=True, seed=seed)
    valid = TensorBatches({"input": x[32:]}, y[32:], 16) if val else None
    return Trainer(model, train, valid, device="cpu", task=task, metrics=metrics, verbose=False,
                   callbacks=callbacks, monitor="val_loss" if val else "train_loss", **kwargs)


def _criterion(task: str):
    return {"binary": nn.BCEWithLogitsLoss(), "multiclass": nn.CrossEntropyLoss(), "regression": nn.MSELoss()}[task]


def _fit(trainer: Trainer, task: str, epochs: int = 3, criterion=None) -> dict:
    opt = torch.optim.Adam(trainer.model.parameters(), lr=1e-2)
    return trainer.train(epochs, opt, criterion or _criterion(task))


class HeaderProbe:
    """A callback after the writer: the first line of scalars.csv and the number of header lines, per epoch."""

    def __init__(self, path) -> None:
        self.path = path
        self.seen: list[tuple[str, int]] = []

    def on_epoch_end(self, trainer, epoch, logs, improved):
        lines = self.path.read_text(encoding="utf-8").splitlines()
        self.seen.append((lines[0], sum(1 for line in lines if line.startswith("epoch,"))))


# ----------------------------------------------------------------------------------------------


def test_events_schema_of_a_three_epoch_run(tmp_path):
    writer = FactsWriter(tmp_path, metadata={"seed": 7, "name": "tiny"})
    trainer = _trainer("binary", [writer])
    history = _fit(trainer, "binary")

    events = read_events(tmp_path / "events.jsonl")
    assert [e["event"] for e in events] == ["on_start", "on_epoch_end", "on_epoch_end", "on_epoch_end",
                                            "on_train_end"]
    assert len({e["run_id"] for e in events}) == 1 and events[0]["run_id"] == writer.run_id
    for e in events:
        assert set(EVENT_FIELDS) <= set(e), set(EVENT_FIELDS) - set(e)
        assert e["schema_version"] == SCHEMA_VERSION
        assert datetime.fromisoformat(e["timestamp"]).tzinfo is not None
        assert e["max_memory_mib"] > 0

    start = events[0]
    assert start["seed"] == 7 and start["name"] == "tiny"
    assert start["device"] == "cpu" and start["hostname"]
    assert "git_commit" in start  # a sha in a checkout, None elsewhere
    assert start["git_commit"] is None or len(start["git_commit"]) == 40
    assert start["versions"]["torch"] == torch.__version__.split("+")[0] or start["versions"]["torch"]
    assert start["num_epochs"] == 3 and "val_auc" in start["keys"]

    ends = events[1:4]
    assert [e["epoch"] for e in ends] == [1, 2, 3]
    assert [e["step"] for e in ends] == [4, 8, 12]  # 32 rows / batch 8 = 4 optimizer steps per epoch
    for i, e in enumerate(ends):
        assert e["losses"] == {"train": history["train_loss"][i], "val": history["val_loss"][i]}
        assert e["metrics"]["val_auc"] == history["val_auc"][i]
        assert e["metrics"]["train_accuracy"] == history["train_accuracy"][i]
        assert e["epoch_time_s"] == history["epoch_time_s"][i]
        assert e["throughput"] == pytest.approx(32 / history["epoch_time_s"][i], rel=1e-3)
        assert e["lr"] == 1e-2
    # seed 004: throughput and memory in scalars.csv too, the event's values on both rows of the epoch
    _, rows = read_scalars(tmp_path)
    for e in ends:
        for row in [r for r in rows if r["epoch"] == e["epoch"]]:
            assert row["throughput"] == pytest.approx(e["throughput"]) and row["max_memory_mib"] > 0

    end = events[-1]
    assert end["best_epoch"] == trainer.best.epoch and end["best_value"] == trainer.best.value
    assert end["epochs_run"] == 3 and end["total_time_s"] > 0
    assert end["losses"]["val"] == history["val_loss"][-1]
    # every line is strict JSON (no NaN literals)
    for line in (tmp_path / "events.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


@pytest.mark.parametrize("task", ["binary", "regression", "multiclass"])
def test_scalars_header_is_fixed_up_front_and_stable(tmp_path, task):
    probe = HeaderProbe(tmp_path / "scalars.csv")
    trainer = _trainer(task, [FactsWriter(tmp_path), probe])
    history = _fit(trainer, task)

    expected = ["epoch", "split", "step", "loss", *metrics_for(task, None), *TAIL]
    assert scalars_header(trainer.available_monitors()) == expected
    header, rows = read_scalars(tmp_path)
    assert header == expected
    assert probe.seen == [(",".join(expected), 1)] * 3  # the same single header after every epoch
    assert [(r["epoch"], r["split"]) for r in rows] == [(e, s) for e in (1, 2, 3) for s in ("train", "val")]
    for r in rows:
        i = r["epoch"] - 1
        assert r["loss"] == history[f"{r['split']}_loss"][i]
        assert r["lr"] == history["lr"][i]
        for m in metrics_for(task, None):
            key = f"{r['split']}_{m}"
            assert r[m] == (history[key][i] if key in history else None)  # not reported: an empty cell
    with open(tmp_path / "scalars.csv", newline="") as f:
        assert {len(cells) for cells in csv.reader(f)} == {len(expected)}


def test_scalars_header_follows_the_requested_metrics_without_validation(tmp_path):
    trainer = _trainer("binary", [FactsWriter(tmp_path)], metrics=["f1", "accuracy", "pr_auc"], val=False)
    _fit(trainer, "binary", epochs=2)
    header, rows = read_scalars(tmp_path)
    assert header == ["epoch", "split", "step", "loss", *trainer_metrics(trainer), *TAIL]
    assert sorted(header[4:7]) == ["accuracy", "f1", "pr_auc"]
    assert [r["split"] for r in rows] == ["train", "train"]
    assert rows[0]["accuracy"] is not None and rows[0]["f1"] is None  # f1 is not streamed on train


def trainer_metrics(trainer) -> list[str]:
    return [k.split("_", 1)[1] for k in trainer.available_monitors() if k != "train_loss"]


def test_a_failing_run_writes_on_exception_and_reraises(tmp_path):
    def nan_loss(pred, target):
        return nn.functional.binary_cross_entropy_with_logits(pred, target) * float("nan")

    trainer = _trainer("binary", [FactsWriter(tmp_path, metadata={"seed": 0})])
    with pytest.raises(TrainingError, match="NaN or infinite"):
        _fit(trainer, "binary", criterion=nan_loss)
    events = read_events(tmp_path)
    assert [e["event"] for e in events] == ["on_start", "on_exception"]
    error = events[-1]["error"]
    assert error["type"] == "TrainingError" and "NaN or infinite" in error["message"]
    assert events[-1]["epoch"] == 1 and set(EVENT_FIELDS) <= set(events[-1])
    header, rows = read_scalars(tmp_path)
    assert header[:4] == ["epoch", "split", "step", "loss"] and rows == []


def test_early_stop_is_an_event(tmp_path):
    trainer = _trainer("regression", [FactsWriter(tmp_path)],
                       early_stopping=EarlyStopping(patience=1, min_delta=1e9))
    _fit(trainer, "regression", epochs=5)
    events = read_events(tmp_path)
    assert [e["event"] for e in events] == ["on_start", "on_epoch_end", "on_epoch_end", "on_early_stop",
                                            "on_train_end"]
    assert events[3]["best_epoch"] == 1 and events[3]["monitor"] == "val_loss"


class DieAfterFacts:
    """A crash between the facts of epoch ``epoch`` (written by the writer before it) and its checkpoint."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs, improved):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_the_facts_of_an_epoch_are_written_before_its_checkpoint(tmp_path):
    trainer = _trainer("regression", [FactsWriter(tmp_path / "facts"), DieAfterFacts(3)],
                       checkpoint_dir=tmp_path / "ckpt")
    with pytest.raises(KeyboardInterrupt):
        _fit(trainer, "regression", epochs=5)
    from specml.train.checkpoint import read_checkpoint_state

    assert read_checkpoint_state(tmp_path / "ckpt" / "last.safetensors")["epoch"] == 2
    _, rows = read_scalars(tmp_path / "facts")
    assert sorted({r["epoch"] for r in rows}) == [1, 2, 3]  # epoch 3 is logged, not yet committed


def test_a_resumed_run_drops_what_was_logged_after_its_checkpoint(tmp_path):
    first = _trainer("regression", [FactsWriter(tmp_path, run_id="run-1")],
                     early_stopping=EarlyStopping(patience=1, min_delta=1e9))
    _fit(first, "regression", epochs=5)  # epochs 1, 2 and the early stop at 2 are logged
    resumed = _trainer("regression", [FactsWriter(tmp_path, run_id="run-1")])
    resumed.epoch, resumed.global_step = 1, 4  # as the checkpoint of epoch 1 restores them
    _fit(resumed, "regression", epochs=3)

    _, rows = read_scalars(tmp_path)
    assert [(r["epoch"], r["split"]) for r in rows] == [(e, s) for e in (1, 2, 3) for s in ("train", "val")]
    events = read_events(tmp_path)
    assert [(e["event"], e["epoch"]) for e in events] == [
        ("on_start", 0), ("on_epoch_end", 1), ("on_train_end", 2),  # the first process's end is history
        ("on_start", 1), ("on_epoch_end", 2), ("on_epoch_end", 3), ("on_train_end", 3)]


def test_a_resumed_run_appends_with_one_header(tmp_path):
    first = FactsWriter(tmp_path, run_id="run-1")
    trainer = _trainer("regression", [first])
    _fit(trainer, "regression", epochs=2)
    # a crash mid-write left a torn last line in each file
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('{"schema_version": 1, "run_id": "run-1", "ev')
    with open(tmp_path / "scalars.csv", "a") as f:
        f.write("3,train,1")

    resumed = _trainer("regression", [FactsWriter(tmp_path, run_id="run-1", metadata={"resumed_from_epoch": 2})])
    resumed.epoch, resumed.global_step = 2, trainer.global_step  # as a checkpoint restores them
    _fit(resumed, "regression", epochs=4)

    _, rows = read_scalars(tmp_path)
    assert (tmp_path / "scalars.csv").read_text().count("epoch,split") == 1
    assert [(r["epoch"], r["split"]) for r in rows] == [(e, s) for e in (1, 2, 3, 4) for s in ("train", "val")]
    events = read_events(tmp_path)
    assert [e["event"] for e in events] == ["on_start", "on_epoch_end", "on_epoch_end", "on_train_end",
                                            "on_start", "on_epoch_end", "on_epoch_end", "on_train_end"]
    assert {e["run_id"] for e in events} == {"run-1"}
    assert events[4]["resumed_from_epoch"] == 2 and events[4]["epoch"] == 2
    assert [e["epoch"] for e in events if e["event"] == "on_epoch_end"] == [1, 2, 3, 4]
    assert [e["step"] for e in events if e["event"] == "on_epoch_end"] == [4, 8, 12, 16]


def test_resume_keeps_the_file_header_when_columns_would_differ(tmp_path):
    _fit(_trainer("binary", [FactsWriter(tmp_path)]), "binary", epochs=1)
    later = _trainer("binary", [FactsWriter(tmp_path)], metrics=["accuracy", "f1"])
    later.epoch = 1
    _fit(later, "binary", epochs=2)
    header, rows = read_scalars(tmp_path)
    assert header == ["epoch", "split", "step", "loss", "accuracy", "auc", *TAIL]
    assert rows[-1]["epoch"] == 2 and rows[-1]["auc"] is None and rows[-1]["accuracy"] is not None
    start = [e for e in read_events(tmp_path) if e["event"] == "on_start"][-1]
    assert start["scalars_columns_dropped"] == ["f1"]


def test_read_events_names_a_bad_line(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "on_start"}\nnot json\n{"event": "on_train_end"}\n')
    with pytest.raises(ValueError, match=r"events.jsonl:2: not a JSON object"):
        read_events(path)


def test_training_rows_of_loaders():
    from torch.utils.data import DataLoader, TensorDataset

    from specml.track.facts import training_rows

    data = TensorDataset(torch.zeros(50, 2), torch.zeros(50))
    assert training_rows(DataLoader(data, batch_size=8)) == 50
    assert training_rows(DataLoader(data, batch_size=8, drop_last=True)) == 48
    assert training_rows(TensorBatches({"x": torch.zeros(50, 2)}, None, 8)) == 50
    assert training_rows(TensorBatches({"x": torch.zeros(50, 2)}, None, 8, drop_last=True)) == 48
    assert training_rows(TensorBatches({"x": torch.zeros(50, 2)}, None, 8, rank=1, world_size=2)) == 25
    assert training_rows(iter([1, 2])) is None


def test_metadata_cannot_overwrite_event_fields(tmp_path):
    with pytest.raises(ValueError, match="may not set the event field.*run_id"):
        FactsWriter(tmp_path, metadata={"run_id": "x", "seed": 1})
