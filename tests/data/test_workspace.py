"""The workspace (``specml.data.workspace``) against a real DuckDB database in ``tmp_path``.

The Pima data comes from the shared data folder next to the repository (``../shared/data``, or
``shared/data`` inside it); small CSV / TSV / Parquet / JSON files are written by the tests themselves.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from specml.data.workspace import ColumnStats, DataError, TableInfo, Workspace
from testkit import PIMA

PIMA_COLUMNS = ["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin", "bmi", "diabetes_pedigree",
                "age", "outcome"]
needs_pima = pytest.mark.skipif(not PIMA.exists(), reason=f"Pima data not found at {PIMA}")


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws" / "workspace.duckdb") as w:
        yield w


@pytest.fixture
def pima(ws):
    """The workspace with the Pima data as table 'pima' and as 'pima_id' (an ``id`` column = source position)."""
    if not PIMA.exists():
        pytest.skip(f"Pima data not found at {PIMA}")
    ws.load(PIMA, "pima")
    data = ws.read_columns("pima", PIMA_COLUMNS)
    ws.write_table("pima_id", data.add_column(0, "id", pa.array(np.arange(data.num_rows), pa.int64())))
    return ws


def rows(ws: Workspace, query: str) -> list[dict]:
    return ws.sql(query).to_pylist()


def leftover_temporaries(ws: Workspace) -> list[str]:
    return [r["table_name"] for r in rows(ws, "SELECT table_name FROM information_schema.tables")
            if r["table_name"].startswith("__specml")]


# ----------------------------------------------------------------------------------------------
# opening


def test_default_path_honours_specml_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    with Workspace() as w:
        assert w.path == tmp_path / "home" / "workspace.duckdb"
        assert (tmp_path / "home").is_dir()
        assert not w.path.exists()  # created on first use
        assert w.tables() == []
        assert w.path.exists()


def test_tables_persist_and_read_only_reopen(tmp_path):
    path = tmp_path / "w.duckdb"
    with Workspace(path) as w:
        w.write_table("t", pa.table({"a": [1, 2, 3]}))
    with Workspace(path, read_only=True) as w:
        assert [t.name for t in w.tables()] == ["t"]
        with pytest.raises(DataError):
            w.write_table("u", pa.table({"a": [1]}))
    with pytest.raises(DataError, match="does not exist"):
        Workspace(tmp_path / "nope.duckdb", read_only=True).tables()


def test_memory_workspace():
    with Workspace(":memory:") as w:
        assert w.path == ":memory:"
        w.write_table("t", pa.table({"a": [1]}))
        assert w.row_count("t") == 1


# ----------------------------------------------------------------------------------------------
# loading


@needs_pima
def test_load_pima_csv(ws):
    assert ws.load(PIMA, "pima") == 768
    assert list(ws.columns("pima")) == PIMA_COLUMNS
    assert ws.columns("pima")["bmi"] == "DOUBLE"
    assert ws.columns("pima")["outcome"] == "BIGINT"
    assert ws.tables() == [TableInfo("pima", 768, 9)]
    assert rows(ws, "SELECT sum(outcome) AS pos FROM pima") == [{"pos": 268}]


EXPECTED = [{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": "b", "score": None},
            {"id": 3, "name": "c", "score": 2.0}]


def _write(path: Path, fmt: str) -> Path:
    if fmt in ("csv", "tsv", "csv.gz"):
        sep = "\t" if fmt == "tsv" else ","
        text = f"id{sep}name{sep}score\n" + "".join(
            f"{r['id']}{sep}{r['name']}{sep}{'' if r['score'] is None else r['score']}\n" for r in EXPECTED)
        if fmt == "csv.gz":
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(EXPECTED), path)
    elif fmt == "json":
        path.write_text(json.dumps(EXPECTED))
    else:  # jsonl / ndjson
        path.write_text("".join(json.dumps(r) + "\n" for r in EXPECTED))
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "csv.gz", "parquet", "json", "jsonl", "ndjson"])
def test_load_each_format(ws, tmp_path, fmt):
    path = _write(tmp_path / f"small.{fmt}", fmt)
    assert ws.load(path, "small") == 3
    assert list(ws.columns("small")) == ["id", "name", "score"]
    assert rows(ws, "SELECT id, name, score FROM small ORDER BY id") == EXPECTED


def test_load_glob_of_two_csvs_unions_by_name(ws, tmp_path):
    (tmp_path / "part1.csv").write_text("a,b\n1,x\n2,y\n")
    (tmp_path / "part2.csv").write_text("b,a,c\nz,3,1.5\n")
    (tmp_path / "other.txt").write_text("not data\n")
    assert ws.load(str(tmp_path / "part*.csv"), "parts") == 3
    assert set(ws.columns("parts")) == {"a", "b", "c"}
    assert rows(ws, "SELECT a, b, c FROM parts ORDER BY a") == [
        {"a": 1, "b": "x", "c": None}, {"a": 2, "b": "y", "c": None}, {"a": 3, "b": "z", "c": 1.5}]


def test_glob_without_match(ws, tmp_path):
    with pytest.raises(DataError, match="no files match"):
        ws.load(str(tmp_path / "*.parquet"), "t")
    assert not ws.has_table("t")


def test_missing_file_names_it_and_suggests(ws, tmp_path):
    (tmp_path / "sales.csv").write_text("a\n1\n")
    with pytest.raises(DataError, match=r"file not found: .*sale\.csv.*did you mean 'sales\.csv'\?"):
        ws.load(tmp_path / "sale.csv", "t")


def test_unknown_extension_and_folder(ws, tmp_path):
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(DataError, match="cannot tell the format"):
        ws.load(tmp_path / "data.xlsx", "t")
    with pytest.raises(DataError, match="is a folder"):
        ws.load(tmp_path, "t")
    assert ws.tables() == []


def test_replace_semantics(ws, tmp_path):
    (tmp_path / "one.csv").write_text("a\n1\n")
    (tmp_path / "two.csv").write_text("a,b\n5,6\n7,8\n")
    ws.load(tmp_path / "one.csv", "t")
    with pytest.raises(DataError, match="table 't' already exists"):
        ws.load(tmp_path / "two.csv", "t")
    with pytest.raises(DataError, match="already exists"):
        ws.load(tmp_path / "two.csv", "T")  # DuckDB names are case-insensitive
    assert rows(ws, "SELECT * FROM t") == [{"a": 1}]
    assert ws.load(tmp_path / "two.csv", "t", replace=True) == 2
    assert rows(ws, "SELECT * FROM t ORDER BY a") == [{"a": 5, "b": 6}, {"a": 7, "b": 8}]
    assert [t.name for t in ws.tables()] == ["t"]


def test_failed_load_leaves_the_old_table(ws, tmp_path):
    (tmp_path / "good.csv").write_text("a\n1\n2\n")
    (tmp_path / "bad.json").write_text('[{"a": 1}, {"a": ')
    ws.load(tmp_path / "good.csv", "t")
    with pytest.raises(DataError, match="cannot load"):
        ws.load(tmp_path / "bad.json", "t", replace=True)
    assert rows(ws, "SELECT a FROM t ORDER BY a") == [{"a": 1}, {"a": 2}]
    assert leftover_temporaries(ws) == []


# ----------------------------------------------------------------------------------------------
# tables, columns, describe


def test_tables_columns_and_describe_values(ws):
    ws.write_table("people", pa.table({
        "name": ["ann", "bob", None, "bob", "cy"],
        "age": pa.array([30, None, None, 41, 19], pa.int32()),
        "score": [1.5, -2.0, 3.25, None, 1.5],
        "ok": [True, False, True, True, None],
    }))
    ws.write_table("empty", pa.table({"x": pa.array([], pa.float64())}))
    assert ws.tables() == [TableInfo("empty", 0, 1), TableInfo("people", 5, 4)]
    assert ws.columns("people") == {"name": "VARCHAR", "age": "INTEGER", "score": "DOUBLE", "ok": "BOOLEAN"}
    assert ws.row_count("people") == 5
    stats = {s.name: s for s in ws.describe("people")}
    assert list(stats) == ["name", "age", "score", "ok"]
    assert stats["name"] == ColumnStats("name", "VARCHAR", nulls=1, distinct=3, min="ann", max="cy")
    assert stats["age"] == ColumnStats("age", "INTEGER", nulls=2, distinct=3, min=19, max=41)
    assert stats["score"] == ColumnStats("score", "DOUBLE", nulls=1, distinct=3, min=-2.0, max=3.25)
    assert stats["ok"] == ColumnStats("ok", "BOOLEAN", nulls=1, distinct=2, min=False, max=True)
    assert ws.describe("empty") == [ColumnStats("x", "DOUBLE", nulls=0, distinct=0, min=None, max=None)]


@needs_pima
def test_describe_pima(ws):
    ws.load(PIMA, "pima")
    stats = {s.name: s for s in ws.describe("pima")}
    assert (stats["age"].min, stats["age"].max) == (21, 81)
    assert stats["outcome"].distinct == 2
    assert all(s.nulls == 0 for s in stats.values())


def test_describe_reads_a_wide_table_a_few_columns_a_query(ws):
    """Issue 15: one SELECT of every column's aggregates made DuckDB's planning quadratic (2,000 columns: over 2
    minutes); queries of DESCRIBE_CHUNK columns keep describe near-linear, with the same answers."""
    from specml.data.workspace import DESCRIBE_CHUNK

    ws.sql(f"CREATE TABLE wide AS SELECT {', '.join(f'i % {k + 1} AS c{k}' for k in range(120))} FROM range(50) t(i)")
    read: list[int] = []
    execute = ws.con.execute
    con = type("Spy", (), {"execute": lambda self, q, *a: read.append(len(set(re.findall(r'"c\d+"', q)))) or
                           execute(q, *a), "__getattr__": lambda self, name: getattr(ws._con, name)})()
    real, ws._con = ws._con, con
    try:
        stats = ws.describe("wide")
    finally:
        ws._con = real
    assert 0 < max(read) <= DESCRIBE_CHUNK and sum(read) == 120
    assert [(s.distinct, s.min, s.max) for s in stats[:3]] == [(1, 0, 0), (2, 0, 1), (3, 0, 2)]
    assert stats[-1].distinct == 50 and not any(s.nulls for s in stats)


def test_describe_nested_types(ws):
    ws.sql("CREATE TABLE nested AS SELECT [1, 2] AS l, {'k': 1} AS s, map([1], ['a']) AS m, 3 AS i")
    stats = {s.name: s for s in ws.describe("nested")}
    assert set(stats) == {"l", "s", "m", "i"}
    assert stats["i"].min == 3 and stats["l"].nulls == 0


# ----------------------------------------------------------------------------------------------
# sql, read_columns, write_table


def test_sql_returns_arrow(ws):
    ws.write_table("t", pa.table({"a": [3, 1, 2]}))
    result = ws.sql("SELECT a * 2 AS b FROM t ORDER BY a")
    assert isinstance(result, pa.Table)
    assert result.column("b").to_pylist() == [2, 4, 6]
    assert ws.sql("SELECT a FROM t WHERE a > ?", [1]).num_rows == 2
    ws.sql("CREATE TABLE u AS SELECT 1 AS x")  # statements other than queries run too
    assert ws.has_table("u")


def test_sql_errors_are_data_errors_with_duckdbs_message(ws):
    ws.write_table("diabetes", pa.table({"a": [1]}))
    with pytest.raises(DataError) as err:
        ws.sql("SELECT * FROM diabets")
    assert "diabets" in str(err.value) and "Catalog Error" in str(err.value)
    assert "diabetes" in str(err.value)  # DuckDB's own "Did you mean"
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="syntax error") as err:
        ws.sql("SELEC 1")
    assert "LINE 1" not in str(err.value)
    with pytest.raises(DataError, match="Binder Error"):
        ws.sql("SELECT nope FROM diabetes")


def test_read_columns_order_where_and_source_order(ws):
    ws.write_table("t", pa.table({"a": [5, 1, 4, 2], "b": ["w", "x", "y", "z"], "c": [0, 0, 0, 0]}))
    got = ws.read_columns("t", ["b", "a"])
    assert got.column_names == ["b", "a"]
    assert got.column("a").to_pylist() == [5, 1, 4, 2]
    assert ws.read_columns("t", ["a"], where="a >= 4").column("a").to_pylist() == [5, 4]
    with pytest.raises(DataError, match="reading table 't' where"):
        ws.read_columns("t", ["a"], where="nope > 1")
    with pytest.raises(DataError, match="no columns"):
        ws.read_columns("t", [])


def test_write_table_replace_and_atomicity(ws):
    ws.write_table("t", pa.table({"a": [1, 2]}))
    with pytest.raises(DataError, match="already exists"):
        ws.write_table("t", pa.table({"a": [9]}), replace=False)
    ws.write_table("t", pa.table({"z": ["new"]}))
    assert rows(ws, "SELECT * FROM t") == [{"z": "new"}]
    assert leftover_temporaries(ws) == []
    ws.write_table("d", {"k": [1, 2]})  # anything pyarrow.table takes
    assert ws.row_count("d") == 2


def test_identifiers_that_need_quoting(ws, tmp_path):
    odd_table = 'My "Odd" Table'
    (tmp_path / "odd.csv").write_text('"order","my col","a""b",select\n1,x,2,True\n2,y,3,False\n3,x,4,True\n'
                                      '4,y,5,False\n5,x,6,True\n6,y,7,False\n')
    assert ws.load(tmp_path / "odd.csv", odd_table) == 6
    assert ws.has_table(odd_table)
    assert list(ws.columns(odd_table)) == ["order", "my col", 'a"b', "select"]
    ws.require_columns(odd_table, ["order", "my col", 'a"b', "select"])
    assert ws.read_columns(odd_table, ['a"b', "order"], where='"order" > 4').to_pylist() == [
        {'a"b': 6, "order": 5}, {'a"b': 7, "order": 6}]
    assert {s.name: s.max for s in ws.describe(odd_table)}["my col"] == "y"
    train, test, n_train, n_test = ws.split(odd_table, test_size=0.5, stratify="my col")
    assert (train, test, n_train, n_test) == ('My "Odd" Table_train', 'My "Odd" Table_test', 3, 3)
    test_classes = Counter(ws.read_columns(test, ["my col"]).column("my col").to_pylist())
    assert set(test_classes) == {"x", "y"} and sorted(test_classes.values()) == [1, 2]
    ws.write_table("select", pa.table({"from": [1]}))
    assert ws.row_count("select") == 1
    assert [t.name for t in ws.tables()] == sorted([odd_table, train, test, "select"])


# ----------------------------------------------------------------------------------------------
# missing tables and columns


def test_require_table_did_you_mean(ws):
    ws.write_table("diabetes", pa.table({"a": [1]}))
    with pytest.raises(DataError, match=r"^table 'diabets' not found \(did you mean 'diabetes'\?\)$"):
        ws.require_table("diabets")
    with pytest.raises(DataError, match=r"table 'zzz' not found \(tables: diabetes\)"):
        ws.columns("zzz")
    ws.require_table("DIABETES")  # same table for DuckDB
    assert ws.resolve("DIABETES") == "diabetes"


def test_require_table_on_an_empty_workspace(ws):
    with pytest.raises(DataError, match="has no tables"):
        ws.describe("anything")


def test_require_columns_names_every_missing_one(ws):
    ws.write_table("t", pa.table({"glucose": [1], "age": [2], "outcome": [0]}))
    ws.require_columns("t", ["glucose", "age"])
    with pytest.raises(DataError) as err:
        ws.require_columns("t", ["glucos", "age", "agee", "zzzzzz"])
    text = str(err.value)
    assert "'glucos' (did you mean 'glucose'?)" in text
    assert "'agee' (did you mean 'age'?)" in text
    assert "'zzzzzz'" in text
    assert "'age'," not in text.split("(")[0]  # the present column is not listed as missing
    with pytest.raises(DataError, match=r"no column 'zzzzzz'; it has: glucose, age, outcome"):
        ws.require_columns("t", ["zzzzzz"])
    with pytest.raises(DataError, match="did you mean 'glucose'"):
        ws.read_columns("t", ["Glucose "])
    # column names match exactly (a spec naming 'Glucose' would get a column called 'glucose' back)
    with pytest.raises(DataError, match=r"no column 'Glucose' \(did you mean 'glucose'\?\)"):
        ws.require_columns("t", ["Glucose"])


# ----------------------------------------------------------------------------------------------
# split


def ids(ws: Workspace, table: str) -> list[int]:
    return ws.read_columns(table, ["id"]).column("id").to_pylist()


def test_split_sizes_and_partition(pima):
    assert pima.split("pima_id", test_size=0.2) == ("pima_id_train", "pima_id_test", 614, 154)
    train, test = ids(pima, "pima_id_train"), ids(pima, "pima_id_test")
    assert len(train) == 614 and len(test) == 154
    assert sorted(train + test) == list(range(768))
    assert train == sorted(train) and test == sorted(test)  # source order kept
    assert test != list(range(614, 768))  # shuffled, not the tail
    # the rows themselves are the source rows
    assert rows(pima, "SELECT count(*) AS n FROM pima_id_test t JOIN pima_id s USING (id) "
                      "WHERE t.glucose = s.glucose AND t.bmi = s.bmi AND t.outcome = s.outcome") == [{"n": 154}]
    assert list(pima.columns("pima_id_test")) == ["id", *PIMA_COLUMNS]
    assert leftover_temporaries(pima) == []


def test_split_stratified_keeps_class_ratios(pima):
    pima.split("pima_id", test_size=0.2, stratify="outcome", seed=7)
    full = Counter(pima.read_columns("pima_id", ["outcome"]).column("outcome").to_pylist())
    test = Counter(pima.read_columns("pima_id_test", ["outcome"]).column("outcome").to_pylist())
    train = Counter(pima.read_columns("pima_id_train", ["outcome"]).column("outcome").to_pylist())
    assert full == {0: 500, 1: 268}
    for label, count in full.items():
        assert abs(test[label] - count * 154 / 768) <= 1, (label, test)
        assert train[label] + test[label] == count
    assert pima.value_counts("pima_id_test", "outcome") == [(0, test[0]), (1, test[1])]


def test_split_same_seed_same_tables_other_seed_differs(pima):
    pima.split("pima_id", seed=3, train_name="a_train", test_name="a_test")
    pima.split("pima_id", seed=3, train_name="b_train", test_name="b_test")
    pima.split("pima_id", seed=4, train_name="c_train", test_name="c_test")
    assert ids(pima, "a_test") == ids(pima, "b_test")
    assert pima.sql("SELECT * FROM a_train").equals(pima.sql("SELECT * FROM b_train"))
    assert ids(pima, "a_test") != ids(pima, "c_test")
    pima.split("pima_id", seed=3, stratify="outcome", train_name="s1_train", test_name="s1_test")
    pima.split("pima_id", seed=3, stratify="outcome", train_name="s2_train", test_name="s2_test")
    assert ids(pima, "s1_test") == ids(pima, "s2_test")


def test_split_does_not_touch_the_global_rng(pima):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    pima.split("pima_id", seed=5, stratify="outcome")
    assert np.array_equal(np.random.get_state()[1], before)


def test_time_split_puts_the_latest_rows_in_test(ws):
    n = 50
    order = np.random.default_rng(0).permutation(n)  # times not in row order
    ws.write_table("events", pa.table({"id": np.arange(n), "t": pa.array(order * 10, pa.int64()),
                                       "v": np.arange(n) * 0.5}))
    assert ws.split("events", test_size=0.2, time_column="t") == ("events_train", "events_test", 40, 10)
    train_t = ws.read_columns("events_train", ["t"]).column("t").to_pylist()
    test_t = ws.read_columns("events_test", ["t"]).column("t").to_pylist()
    assert sorted(test_t) == [t * 10 for t in range(40, 50)]
    assert max(train_t) < min(test_t)
    test_ids = ids(ws, "events_test")
    assert test_ids == sorted(test_ids)  # source order, not time order
    assert test_ids == sorted(int(i) for i in np.flatnonzero(order >= 40))


def test_time_split_with_timestamps_and_nulls(ws):
    ws.sql("CREATE TABLE ts AS SELECT range AS id, TIMESTAMP '2024-01-01' + INTERVAL (9 - range) DAY AS at "
           "FROM range(10)")
    ws.split("ts", test_size=0.3, time_column="at")
    assert ids(ws, "ts_test") == [0, 1, 2]  # the newest days are the first rows
    ws.sql("INSERT INTO ts VALUES (10, NULL)")
    with pytest.raises(DataError, match="NULL"):
        ws.split("ts", time_column="at", replace=True)


def test_split_errors(pima):
    with pytest.raises(DataError, match="cannot be used together"):
        pima.split("pima", stratify="outcome", time_column="age")
    for bad in (0, 1, 1.5, -0.1, float("nan")):
        with pytest.raises(DataError, match="test_size"):
            pima.split("pima", test_size=bad)
    with pytest.raises(DataError, match=r"table 'pima' has no column 'outcom' \(did you mean 'outcome'\?\)"):
        pima.split("pima", stratify="outcom")
    with pytest.raises(DataError, match=r"table 'pimaa' not found \(did you mean 'pima'\?\)"):
        pima.split("pimaa")
    with pytest.raises(DataError, match="cannot split.*stratified on 'bmi'"):
        pima.split("pima", stratify="bmi")  # a continuous column: classes with one row
    with pytest.raises(DataError, match="different names"):
        pima.split("pima", train_name="x", test_name="x")
    assert not pima.has_table("pima_train")


def test_split_existing_outputs_need_replace(pima):
    pima.split("pima_id", seed=1)
    first = ids(pima, "pima_id_test")
    with pytest.raises(DataError, match="already exists"):
        pima.split("pima_id", seed=2)
    assert ids(pima, "pima_id_test") == first
    pima.split("pima_id", seed=2, replace=True)
    assert ids(pima, "pima_id_test") != first
    assert pima.row_count("pima_id_train") == 614


def test_split_stratify_with_null_labels_and_a_view(ws):
    labels = ["a"] * 10 + ["b"] * 10 + [None] * 10
    ws.write_table("t", pa.table({"id": list(range(30)), "y": labels}))
    ws.sql("CREATE VIEW v AS SELECT * FROM t WHERE id < 30")
    assert ws.split("v", test_size=0.2, stratify="y")[2:] == (24, 6)
    test_labels = Counter(ws.read_columns("v_test", ["y"]).column("y").to_pylist())
    assert test_labels == {"a": 2, "b": 2, None: 2}
    assert leftover_temporaries(ws) == []


def test_duckdb_is_real(ws):
    """Control: the workspace is an ordinary DuckDB file another connection can read."""
    ws.write_table("t", pa.table({"a": [1, 2]}))
    path = ws.path
    ws.close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute("SELECT sum(a) FROM t").fetchall() == [(3,)]
    finally:
        con.close()
