"""specml.data.task: one rule decides a target column's task, and the compiler and training agree on it."""

from __future__ import annotations

import pyarrow as pa
import pytest

from specml.compile.errors import CompileError
from specml.compile.profile import column_kind, profile_table
from specml.compile.target import decide_task
from specml.data.task import MAX_CLASSES, MAX_INTEGER_CLASSES, TaskError, arrow_kind, infer_task
from specml.data.tensors import infer_loss, task_of
from specml.data.workspace import DataError, Workspace
from specml.spec.model import ModelSpec


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws.duckdb") as w:
        yield w


@pytest.mark.parametrize(("kind", "distinct", "hint", "task"), [
    ("integer", 2, None, "binary"),
    ("string", 2, None, "binary"),
    ("float", 2, None, "binary"),
    ("integer", 2, "regression", "regression"),
    ("integer", MAX_INTEGER_CLASSES, None, "multiclass"),
    ("integer", MAX_INTEGER_CLASSES + 1, None, "regression"),
    ("integer", MAX_INTEGER_CLASSES + 1, "classification", "multiclass"),
    ("integer", MAX_CLASSES + 1, "classification", "regression"),
    ("integer", 5, "regression", "regression"),
    ("string", MAX_CLASSES, None, "multiclass"),
    ("float", 3, None, "regression"),
])
def test_the_rule(kind, distinct, hint, task):
    assert infer_task(kind, distinct, hint)[0] == task


@pytest.mark.parametrize(("kind", "distinct", "message"), [
    ("integer", 1, "fewer than 2 values"),
    ("string", MAX_CLASSES + 1, "too many classes"),
    ("temporal", 30, "date/time"),
])
def test_what_no_task_fits(kind, distinct, message):
    with pytest.raises(TaskError, match=message):
        infer_task(kind, distinct)


def test_one_integer_threshold():
    assert MAX_INTEGER_CLASSES == 20 and MAX_CLASSES == 50


COLUMNS = {  # column -> SQL over i in 0..119
    "two_ints": "i % 2",
    "five_ints": "i % 5",
    "twenty_ints": "i % 20",
    "thirty_ints": "i % 30",   # 21..50 distinct integers: training took these as classes, the compiler did not
    "forty_ints": "i % 40",
    "many_ints": "i",
    "yes_no": "['yes','no'][1 + i % 2]",
    "colours": "['red','green','blue','cyan'][1 + i % 4]",
    "flag": "i % 3 = 0",
    "price": "i * 1.25",
    "halves": "(i % 3) * 0.5",
    "big_ints": "CAST(i % 7 AS BIGINT)",
    "small_ints": "CAST(i % 7 AS TINYINT)",
}


def _spec() -> ModelSpec:
    return ModelSpec.model_validate({
        "inputs": {"f": {"dtype": "float32", "shape": [None, 1], "columns": ["x"]}},
        "graph": [{"name": "head", "type": "torch.nn.Linear", "params": {"in_features": 1, "out_features": 1},
                   "inputs": {"input": "f"}}],
        "outputs": {"logits": "head.output"}})


def test_the_compiler_and_training_choose_the_same_task_on_the_same_columns(ws):
    ws.sql("CREATE TABLE t AS SELECT i * 0.5 AS x, "
           + ", ".join(f"{expr} AS {col}" for col, expr in COLUMNS.items()) + " FROM range(120) r(i)")
    profile = profile_table(ws, "t")
    data = ws.read_columns("t", ["x", *COLUMNS])
    chosen = {}
    for col in COLUMNS:
        compiled, _ = decide_task(profile.column(col), None)
        loss, _ = infer_loss(_spec(), data, col)
        assert task_of(loss.type) == compiled, col
        assert arrow_kind(data.schema.field(col).type) == profile.column(col).kind, col
        chosen[col] = compiled
    assert chosen["thirty_ints"] == chosen["many_ints"] == "regression"
    assert chosen["twenty_ints"] == chosen["colours"] == "multiclass"


def test_both_refuse_the_same_columns(ws):
    ws.sql("CREATE TABLE t AS SELECT i * 0.5 AS x, 'w' || (i % 60) AS words, "
           "DATE '2024-01-01' + CAST(i AS INTEGER) AS day, 1 AS one FROM range(120) r(i)")
    profile = profile_table(ws, "t")
    data = ws.read_columns("t", ["x", "words", "day", "one"])
    for col, message in (("words", "too many classes"), ("day", "date/time"), ("one", "fewer than 2 values")):
        with pytest.raises(CompileError, match=message):
            decide_task(profile.column(col), None)
        with pytest.raises(DataError, match=message):
            infer_loss(_spec(), data, col)


@pytest.mark.parametrize(("arrow", "duck"), [
    (pa.int8(), "TINYINT"), (pa.uint32(), "UINTEGER"), (pa.float32(), "FLOAT"), (pa.decimal128(10, 2), "DECIMAL(10,2)"),
    (pa.string(), "VARCHAR"), (pa.bool_(), "BOOLEAN"), (pa.timestamp("us"), "TIMESTAMP"), (pa.date32(), "DATE"),
    (pa.list_(pa.int64()), "BIGINT[]"),
])
def test_arrow_and_duckdb_kinds_agree(arrow, duck):
    assert arrow_kind(arrow) == column_kind(duck)
