"""Training on a streamed table (specml.train.streaming): the batches, a run end to end, bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import duckdb
import numpy as np
import pytest
import torch

from specml.data import stream
from specml.spec import load_model_spec, load_trainer_spec
from specml.train.streaming import StreamBatches, prepare_streaming
from testkit import ROOT, invoke, load_pima, ok, specml, specml_env

torch.set_num_threads(1)

MODEL = ROOT / "examples" / "pima_mlp" / "model.yaml"
TRAINER = ROOT / "examples" / "pima_mlp" / "trainer.yaml"
PIMA_COLUMNS = ["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin", "bmi",
                "diabetes_pedigree", "age", "outcome"]


@pytest.fixture
def pima(tmp_path):
    load_pima(tmp_path)
    return tmp_path


def _trainer(**config):
    return load_trainer_spec({"optimizer": {"type": "torch.optim.Adam", "lr": 0.01},
                              "config": {"epochs": 1, "batch_size": 32, "seed": 3, "streaming": True, **config}})


def _source(home, **kw):
    return stream.StreamSource(home / "workspace.duckdb", "pima", PIMA_COLUMNS, validation_split=0.2, seed=3,
                               batch_rows=kw.pop("batch_rows", 50), chunk_rows=kw.pop("chunk_rows", 100))


def _rows(batches) -> list[tuple]:
    return [tuple(r) for inputs, _ in batches for r in inputs["patient_data"].tolist()]


def test_the_batches_cover_every_training_row_once_per_epoch_in_a_new_order(pima):
    p = prepare_streaming(load_model_spec(MODEL), _trainer(), _source(pima), None)
    batches = p.train_batches
    assert len(p.train_rows) == batches.rows == stream_train_rows(pima)
    epochs = []
    for epoch in (1, 2):
        batches.set_epoch(epoch)
        got = list(batches)
        assert len(got) == len(batches) == -(-batches.rows // 32)
        assert all(len(t) == 32 for _, t in got[:-1])
        epochs.append(_rows(got))
    assert sorted(epochs[0]) == sorted(epochs[1]) and epochs[0] != epochs[1] and len(epochs[0]) == batches.rows
    batches.set_epoch(2)
    assert _rows(batches) == epochs[1]  # the same epoch, the same order
    val = list(p.val_batches)  # validation rows that fit the budget are read once, into memory
    assert sum(len(t) for _, t in val) == len(p.val_rows) and not set(_rows(val)) & set(epochs[0])
    streamed = list(StreamBatches(batches.source, p.preprocessor, "val", 64))  # else streamed every epoch
    assert _rows(streamed) == _rows(val) and all(len(t) <= 64 for _, t in streamed)


def stream_train_rows(home) -> int:
    return _source(home).train_rows


def test_ranks_read_disjoint_chunks_and_take_the_same_number_of_steps(pima):
    p = prepare_streaming(load_model_spec(MODEL), _trainer(), _source(pima), None)
    ranks = [StreamBatches(p.train_batches.source, p.preprocessor, "train", 32, shuffle=True, seed=3, rank=r,
                           world_size=2) for r in (0, 1)]
    for b in ranks:
        b.set_epoch(4)
    got = [list(b) for b in ranks]
    assert len(got[0]) == len(got[1]) == len(ranks[0]) == len(ranks[1]) > 0
    assert all(len(t) <= 16 for g in got for _, t in g)  # the global batch of 32, split across 2 ranks
    assert not set(_rows(got[0])) & set(_rows(got[1]))


def test_a_parquet_glob_prepares_and_yields_batches(tmp_path):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from specml.train.streaming import open_source

    data = pacsv.read_csv(ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv")
    for i in range(3):
        pq.write_table(data.slice(i * 256, 256), tmp_path / f"pima-{i}.parquet")
    trainer = _trainer()
    source = open_source(":memory:", None, PIMA_COLUMNS, trainer.config, parquet=str(tmp_path / "pima-*.parquet"))
    p = prepare_streaming(load_model_spec(MODEL), trainer, source, None)
    assert len(source.chunks) == 3 and len(p.train_rows) + len(p.val_rows) == 768
    p.train_batches.set_epoch(1)
    assert sum(len(t) for _, t in p.train_batches) == len(p.train_rows)


def test_class_weights_are_refused_by_name_when_streaming(pima):
    from specml.train.errors import TrainingError

    with pytest.raises(TrainingError, match=r"^config\.class_weights: not available when the table is streamed"):
        prepare_streaming(load_model_spec(MODEL), _trainer(class_weights="auto"), _source(pima), None)


@pytest.mark.slow
def test_a_streamed_training_predicts_with_specml_predict(pima):
    from specml import api

    result = api.train(MODEL, TRAINER, table="pima", name="s", workspace=pima / "workspace.duckdb", home=pima,
                       verbose=False, track=False,
                       overrides=["trainer.config.epochs=2", "trainer.config.streaming=true",
                                  "trainer.config.make_plots=false", "trainer.config.early_stopping_patience=null"])
    assert any(n.startswith("streaming (config.streaming: true)") for n in result.notes)
    assert result.rows["train"] + result.rows["validation"] == 768 and len(result.history["val_loss"]) == 2
    meta = json.loads((result.directory / "metadata.json").read_text())
    assert meta["preprocessing"]["inputs"]["patient_data"]["normalize"] == "standard"
    ok(invoke("predict", "--model", "s", "-t", "pima", "--output-table", "preds", home=pima))
    with duckdb.connect(str(pima / "workspace.duckdb"), read_only=True) as con:
        probs = np.array(con.execute("SELECT probability FROM preds").fetchall(), dtype=float)
    assert len(probs) == 768 and np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()


@pytest.mark.slow
def test_a_streamed_run_resumes_streamed_and_refuses_to_resume_in_memory(pima):
    from specml import api
    from specml.train.errors import TrainingError

    def train(epochs, streaming, resume):
        return api.train(MODEL, TRAINER, table="pima", name="r", workspace=pima / "workspace.duckdb", home=pima,
                         verbose=False, resume=resume,
                         overrides=[f"trainer.config.epochs={epochs}", f"trainer.config.streaming={streaming}",
                                    "trainer.config.make_plots=false", "trainer.config.tensorboard=false"])

    first = train(2, "true", False)
    with pytest.raises(TrainingError, match=r"changed since its checkpoint:\n  streamed: True -> '<absent>'"):
        train(2, "false", True)
    again = train(2, "true", True)  # the same choice: it resumes (the run had ended: nothing left to train)
    assert again.history["train_loss"] == first.history["train_loss"]


@pytest.mark.slow
def test_two_ddp_processes_stream_their_own_chunks(pima):
    ran = specml(pima, "train", "-m", MODEL, "-T", TRAINER, "-t", "pima", "-n", "ddp", "--nproc", "2",
                 "trainer.config.streaming=true", "trainer.config.epochs=2", "trainer.config.make_plots=false")
    ok(ran)
    meta = json.loads((pima / "models" / "ddp" / "metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["epochs"]["run"] == 2
    assert meta["rows"]["train"] + meta["rows"]["validation"] == 768
    assert np.isfinite(meta["metrics"]["final"]["val_auc"])  # every rank's validation scores, gathered


BUDGET_MB = 60
MARGIN_MB = 40  # torch's allocator, DuckDB's scan threads and result buffers, Python objects of a run

CHILD = textwrap.dedent("""
    import json, resource, sys
    import torch
    torch.set_num_threads(1)
    from specml import api

    home, budget = sys.argv[1], int(sys.argv[2])
    def run(table, name):
        return api.train(home + "/model.yaml", home + "/trainer.yaml", table=table, name=name, home=home,
                         workspace=home + "/workspace.duckdb", verbose=False, track=False,
                         overrides=[f"trainer.config.memory_budget_mb={budget}"])
    run("small", "warm")  # every module a run imports, loaded before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run("big", "big")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (peak - base) / 1024, "base_mb": base / 1024, "notes": result.notes,
                      "rows": result.rows}))
""")


@pytest.mark.slow
def test_a_table_three_times_the_budget_trains_in_bounded_memory(tmp_path):
    columns = [f"x{i}" for i in range(24)]
    (tmp_path / "model.yaml").write_text(json.dumps({
        "version": 1, "name": "wide",
        "inputs": {"x": {"dtype": "float32", "shape": [None, 24], "columns": columns, "normalize": "standard"}},
        "graph": [{"name": "out", "type": "torch.nn.Linear", "params": {"in_features": 24, "out_features": 1},
                   "inputs": {"input": "x"}}],
        "outputs": {"logits": "out.output"},
        # a regression: no decision threshold to choose on the validation rows afterwards
        "loss": {"type": "torch.nn.MSELoss", "inputs": {"input": "logits", "target": "y"}}}))
    (tmp_path / "trainer.yaml").write_text(json.dumps({
        "optimizer": {"type": "torch.optim.SGD", "lr": 0.05},
        "config": {"epochs": 1, "batch_size": 2048, "seed": 1, "validation_split": 0.05, "make_plots": False,
                   "tensorboard": False, "save_artifacts": False}}))
    rows = 1_000_000  # 1M rows x 25 columns x 8 bytes ~ 191 MB: about 3x the budget
    values = ", ".join(f"(hash(range * {i + 7}) % 1000)::DOUBLE / 1000 AS x{i}" for i in range(24))
    with duckdb.connect(str(tmp_path / "workspace.duckdb")) as con:
        con.execute(f"CREATE TABLE big AS SELECT {values}, (hash(range) % 2)::DOUBLE AS y FROM range({rows})")
        con.execute("CREATE TABLE small AS SELECT * FROM big LIMIT 2000")
    assert stream.estimate_mb(rows, 25) > 3 * BUDGET_MB
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(BUDGET_MB)], capture_output=True,
                         text=True, env=specml_env(tmp_path), timeout=240, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert any("exceed the memory budget of 60 MB" in n for n in report["notes"]), report
    assert report["rows"]["train"] + report["rows"]["validation"] == rows
    assert report["growth_mb"] < BUDGET_MB + MARGIN_MB, report
