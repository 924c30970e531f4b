"""specml.data.stream: chunked reading, the hash split, and preprocessing fitted in one pass."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from specml.data import stream
from specml.data import tensors as T
from specml.data.workspace import DataError, Workspace
from specml.spec import load_model_spec

torch.set_num_threads(1)

SPEC = {
    "version": 1, "name": "mix",
    "inputs": {"num": {"dtype": "float32", "shape": [None, 3], "columns": ["a", "b", "c"], "normalize": "standard"},
               "box": {"dtype": "float32", "shape": [None, 1], "columns": ["d"], "normalize": "minmax"},
               "raw": {"dtype": "float32", "shape": [None, 1], "columns": ["e"]},
               "city": {"dtype": "int64", "shape": [None], "columns": ["city"], "categorical": True}},
    "graph": [{"name": "emb", "type": "torch.nn.Embedding", "params": {"num_embeddings": 8, "embedding_dim": 2},
               "inputs": {"input": "city"}},
              {"name": "cat", "type": "torch.cat", "params": {"dim": 1},
               "inputs": {"tensors": ["num", "box", "raw", "emb.output"]}},
              {"name": "out", "type": "torch.nn.Linear", "params": {"in_features": 7, "out_features": 3},
               "inputs": {"input": "cat.output"}}],
    "outputs": {"logits": "out.output"},
    "loss": {"type": "torch.nn.CrossEntropyLoss", "inputs": {"input": "logits", "target": "label"}},
}


def _table(n: int = 5000, seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"a": rng.normal(1e6, 3.0, n), "b": rng.integers(-50, 50, n), "c": rng.exponential(2.0, n),
                     "d": rng.uniform(-4, 9, n), "e": rng.normal(0, 1, n),
                     "city": rng.choice(["paris", "oslo", "lima", "rome"], n),
                     "label": rng.choice(["x", "y", "z"], n)})


@pytest.fixture
def workspace(tmp_path):
    path = tmp_path / "ws.duckdb"
    con = duckdb.connect(str(path))
    data = _table()
    con.register("src", data)
    con.execute("CREATE TABLE t AS SELECT * FROM src")
    con.close()
    return path


def _source(where, **kw):
    columns = ["a", "b", "c", "d", "e", "city", "label"]
    return stream.StreamSource(where, kw.pop("table", "t"), columns, validation_split=0.2, seed=kw.pop("seed", 5),
                               batch_rows=kw.pop("batch_rows", 300), chunk_rows=kw.pop("chunk_rows", 700), **kw)


def test_streamed_fit_equals_the_in_memory_fit_on_the_same_rows(workspace):
    spec = load_model_spec(SPEC)
    source = _source(workspace)
    assert len(source.chunks) == 8 and source.train_rows + source.val_rows == 5000
    assert 0.15 < source.val_rows / 5000 < 0.25
    streamed = stream.fit(spec, source, list(spec.losses))
    # the same training rows, all at once, through the in-memory fit
    train = pa.concat_tables(source.batches(list(range(len(source.chunks))), "train"))
    assert train.num_rows == source.train_rows
    memory = T.fit(spec, train, list(spec.losses), np.arange(train.num_rows))
    a, b = streamed.to_dict(), memory.to_dict()
    for name in ("num", "box"):
        np.testing.assert_allclose(a["inputs"][name]["center"], b["inputs"][name]["center"], rtol=1e-12)
        np.testing.assert_allclose(a["inputs"][name]["scale"], b["inputs"][name]["scale"], rtol=1e-9)
        a["inputs"][name].pop("center"), a["inputs"][name].pop("scale")
        b["inputs"][name].pop("center"), b["inputs"][name].pop("scale")
    assert a == b  # vocabularies, classes, dtypes, the rest: exactly the same state
    assert streamed.inputs["city"].vocab == ["lima", "oslo", "paris", "rome"]
    assert streamed.target.classes == ["x", "y", "z"]


def test_the_split_is_the_same_every_pass_and_disjoint(workspace):
    source = _source(workspace)
    keys = ["a", "b"]

    def rows(part):
        return pa.concat_tables(source.batches(list(range(len(source.chunks))), part)).select(keys).to_pylist()

    train, val = rows("train"), rows("val")
    assert rows("train") == train and rows("val") == val
    assert not {tuple(r.values()) for r in train} & {tuple(r.values()) for r in val}
    assert len(train) == source.train_rows and len(val) == source.val_rows
    assert all(b.num_rows <= 300 for b in source.batches([0, 1], "train"))
    other = _source(workspace, seed=6)  # another seed, another split
    assert other.val_rows != source.val_rows or rows("val") != pa.concat_tables(
        other.batches(list(range(len(other.chunks))), "val")).select(keys).to_pylist()


def test_an_open_workspace_is_read_through_a_cursor(workspace):
    with Workspace(workspace, read_only=True) as ws:
        source = _source(ws)
        assert sum(t.num_rows for t in source.batches([0, 3], "val")) == source.chunks[0].val + source.chunks[3].val


def test_a_parquet_glob_streams_file_by_file(tmp_path):
    data = _table(3000)
    for i in range(3):
        pq.write_table(data.slice(i * 1000, 1000), tmp_path / f"part-{i}.parquet")
    spec = load_model_spec(SPEC)
    source = stream.parquet_source(tmp_path / "part-*.parquet", ["a", "b", "c", "d", "e", "city", "label"],
                                   validation_split=0.25, seed=1, batch_rows=256)
    assert len(source.chunks) == 3 and source.train_rows + source.val_rows == 3000
    prep = stream.fit(spec, source, list(spec.losses))
    train = pa.concat_tables(source.batches([0, 1, 2], "train"))
    memory = T.fit(spec, train, list(spec.losses), np.arange(train.num_rows))
    np.testing.assert_allclose(prep.inputs["num"].scale, memory.inputs["num"].scale, rtol=1e-9)


def test_moments_merge_like_one_pass():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(5e8, 1.0, (700, 2)), rng.normal(5e8, 7.0, (13, 2))])
    x[3, 1] = np.inf  # not counted, as nanstd over the finite values
    m = stream._Moments(2)
    for part in np.array_split(x, 9):
        m.add(part)
    finite = np.where(np.isfinite(x), x, np.nan)
    center, scale = m.standard()
    np.testing.assert_allclose(center, np.nanmean(finite, axis=0), rtol=1e-14)
    np.testing.assert_allclose(scale, np.nanstd(finite, axis=0), rtol=1e-8)


def test_what_streaming_cannot_fit_is_refused_by_name(workspace):
    spec = load_model_spec(SPEC)
    # quantile/robust arrive in the model spec separately: the option is set past validation here
    quantile = spec.inputs["num"].model_copy(update={"normalize": "quantile"})
    spec = spec.model_copy(update={"inputs": {**spec.inputs, "num": quantile}})
    with pytest.raises(DataError, match=r"inputs\.num\.normalize: 'quantile'.*streaming"):
        stream.fit(spec, _source(workspace), list(spec.losses))


def test_a_view_is_refused(workspace):
    con = duckdb.connect(str(workspace))
    con.execute("CREATE VIEW v AS SELECT * FROM t")
    con.close()
    with pytest.raises(DataError, match="'v' is a view"):
        _source(workspace, table="v")


def test_the_choice():
    assert stream.choose("auto", 1000, 10, 60) == (False, None)
    streamed, note = stream.choose("auto", 1_000_000, 25, 60)
    assert streamed and "191 MB exceed the memory budget of 60 MB" in note
    assert stream.choose(True, 10, 1, 60)[0] and not stream.choose(False, 10**9, 99, 60)[0]
    assert stream.budget_mb(None) == max(stream.physical_memory_mb() // 4, 1) and stream.budget_mb(7) == 7
