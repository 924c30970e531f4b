"""The workspace: an embedded DuckDB database holding the user's tables.

A :class:`Workspace` loads CSV / Parquet / JSON files into tables, lists and describes them, runs SQL,
reads columns as Arrow, writes Arrow tables back, and splits a table into train and test tables.

Every value goes to DuckDB as a bound parameter and every identifier is quoted, so table and column
names with spaces, mixed case, quotes or reserved words work. Writes are atomic: a new table is built
under a temporary name and renamed into place inside one transaction, so a failed load or split
leaves the tables that were there untouched.

User mistakes (a missing file, an unknown table or column, a bad SQL statement) raise
:class:`DataError`, whose message says what was wrong and, where a name is close, "did you mean".
"""

from __future__ import annotations

import glob
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from specml.data.errors import DataError
from specml.env import number
from specml.home import workspace_path
from specml.spec.errors import suggestion

if TYPE_CHECKING:  # pyarrow (and numpy under it) load when data is read, not for the cheap checks
    import pyarrow as pa

__all__ = ["ColumnStats", "DataError", "TableInfo", "Workspace", "quote_ident"]

# Tables being built are named with this prefix until they are renamed into place; they are never listed.
_TMP_PREFIX = "__specml_tmp_"

# extension (after an optional compression suffix) -> reader format
_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
}
_COMPRESSION = (".gz", ".zst")
_GLOB_CHARS = set("*?[")


@dataclass
class TableInfo:
    name: str
    rows: int
    columns: int


@dataclass
class ColumnStats:
    name: str
    type: str
    nulls: int
    distinct: int
    min: Any
    max: Any


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted: ``my "col"`` becomes ``"my ""col"`` plus the closing quote."""
    return '"' + str(name).replace('"', '""') + '"'


_q = quote_ident
DESCRIBE_CHUNK = 16  # columns per describe query
LOCK_WAIT_S = 60.0  # how long opening a workspace another process writes waits for it


def _duck_message(err: BaseException) -> str:
    """DuckDB's message without the ``LINE 1: ...`` pointer, keeping its own "Did you mean"."""
    lines = [line.strip() for line in str(err).splitlines()]
    first = lines[0] if lines else type(err).__name__
    hints = [line for line in lines[1:] if line.lower().startswith("did you mean")]
    if hints:
        first += f" ({hints[0]})"
    return first


def _with_hint(message: str, word: str, candidates: Iterable[str]) -> str:
    hint = suggestion(word, candidates)
    return f"{message} ({hint})" if hint else message


def _file_format(path: str) -> str | None:
    name = Path(path).name.lower()
    for comp in _COMPRESSION:
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    return _FORMATS.get(Path(name).suffix)


class Workspace:
    """A DuckDB database of tables (default ``<specml home>/workspace.duckdb``).

    ``path`` may be ``":memory:"``. The parent folder is created here; the database file when the
    connection is first used. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        resolved = workspace_path(path)
        self.path: Path | str = resolved if str(resolved) == ":memory:" else Path(resolved)
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = None
        if isinstance(self.path, Path) and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------------------
    # connection

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (opened on first use)."""
        if self._con is None:
            if isinstance(self.path, Path) and self.read_only and not self.path.exists():
                raise DataError(f"workspace {self.path} does not exist (load a table into it first)")
            import time

            # DuckDB lets one process write a file: while another holds it, retry with backoff up to a bound
            bound = number("SPECML_WORKSPACE_WAIT", LOCK_WAIT_S, float)
            deadline, wait = time.monotonic() + bound, 0.05
            while True:
                try:
                    self._con = duckdb.connect(str(self.path), read_only=self.read_only)
                    break
                except duckdb.Error as err:
                    if "lock" not in str(err).lower():
                        raise DataError(f"cannot open workspace {self.path}: {_duck_message(err)}") from None
                    if time.monotonic() >= deadline:
                        raise DataError(f"workspace {self.path} is busy: another process is writing it; waited "
                                        f"{bound:.0f} s (SPECML_WORKSPACE_WAIT sets how long). "
                                        f"{_duck_message(err)}") from None
                    time.sleep(min(wait, max(deadline - time.monotonic(), 0.01)))
                    wait = min(wait * 2, 1.0)
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    def _run(self, query: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Execute one statement and fetch every row (a DB-API result must be consumed)."""
        try:
            return self.con.execute(query, params).fetchall()
        except duckdb.Error as err:
            raise DataError(_duck_message(err)) from None

    def _numpy(self, query: str, params: Sequence[Any] | None = None) -> dict:
        try:
            return self.con.execute(query, params).fetchnumpy()
        except duckdb.Error as err:
            raise DataError(_duck_message(err)) from None

    # ------------------------------------------------------------------------------------------
    # names

    def _entries(self) -> dict[str, str]:
        """Tables and views of the current schema: name -> 'BASE TABLE' | 'VIEW' (temporary ones left out)."""
        rows = self._run(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_catalog = current_database() AND table_schema = current_schema() "
            "ORDER BY table_name"
        )
        return {name: kind for name, kind in rows if not name.startswith(_TMP_PREFIX)}

    def _lookup(self, name: str) -> str | None:
        """The stored name of table ``name`` (DuckDB names are case-insensitive), or None."""
        entries = self._entries()
        if name in entries:
            return name
        lowered = str(name).lower()
        for stored in entries:
            if stored.lower() == lowered:
                return stored
        return None

    def resolve(self, name: str) -> str:
        """The name ``name`` is stored under (DuckDB matches table names case-insensitively); DataError if none."""
        stored = self._lookup(name)
        if stored is None:
            self.require_table(name)  # raises with the message
        return stored  # type: ignore[return-value]

    def has_table(self, name: str) -> bool:
        return self._lookup(name) is not None

    def require_table(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise DataError(f"a table name must be a non-empty string, got {name!r}")
        if self._lookup(name) is not None:
            return
        names = list(self._entries())
        message = f"table '{name}' not found"
        hint = suggestion(name, names)
        if hint:
            message += f" ({hint})"
        elif names:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            message += f" (tables: {shown})"
        else:
            message += f" (the workspace {self.path} has no tables yet)"
        raise DataError(message)

    def columns(self, table: str) -> dict[str, str]:
        """Column name -> DuckDB type, in table order."""
        stored = self.resolve(table)
        rows = self._run(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = current_schema() AND table_name = ? "
            "ORDER BY ordinal_position",
            [stored],
        )
        return dict(rows)

    def require_columns(self, table: str, columns: Iterable[str]) -> None:
        """Raise a DataError naming every column of ``columns`` that ``table`` lacks (names match exactly)."""
        have = self.columns(table)
        missing = [c for c in dict.fromkeys(columns) if c not in have]
        if not missing:
            return
        parts = [_with_hint(f"'{c}'", c, have) for c in missing]
        noun = "column" if len(missing) == 1 else "columns"
        message = f"table '{self.resolve(table)}' has no {noun} {', '.join(parts)}"
        if not any(suggestion(c, have) for c in missing) and len(have) <= 30:
            message += f"; it has: {', '.join(have)}"
        raise DataError(message)

    # ------------------------------------------------------------------------------------------
    # reading

    def row_count(self, table: str) -> int:
        stored = self.resolve(table)
        return int(self._run(f"SELECT count(*) FROM {_q(stored)}")[0][0])

    def tables(self) -> list[TableInfo]:
        out = []
        for name in self._entries():
            rows = int(self._run(f"SELECT count(*) FROM {_q(name)}")[0][0])
            ncols = int(self._run(
                "SELECT count(*) FROM information_schema.columns WHERE table_catalog = current_database() "
                "AND table_schema = current_schema() AND table_name = ?", [name])[0][0])
            out.append(TableInfo(name=name, rows=rows, columns=ncols))
        return out

    def describe(self, table: str) -> list[ColumnStats]:
        """Per column: type, null count, distinct (non-null) values, min and max.

        One query per :data:`DESCRIBE_CHUNK` columns: DuckDB's planning time grows with the square of the
        aggregates in one SELECT, so chunks keep the whole near-linear in columns (2,000 in seconds)."""
        stored = self.resolve(table)
        cols = self.columns(stored)
        if not cols:
            return []
        names = list(cols)
        values: list = []
        for start in range(0, len(names), DESCRIBE_CHUNK):
            part = {n: cols[n] for n in names[start:start + DESCRIBE_CHUNK]}
            exprs = []
            for name in part:
                c = _q(name)
                exprs += [f"count(*) - count({c})", f"count(DISTINCT {c})", f"min({c})", f"max({c})"]
            try:
                values += list(self.con.execute(f"SELECT {', '.join(exprs)} FROM {_q(stored)}").fetchall()[0])
            except duckdb.Error:
                values += self._describe_per_column(stored, part)
        out = []
        for i, (name, type_) in enumerate(cols.items()):
            nulls, distinct, lo, hi = values[4 * i: 4 * i + 4]
            out.append(ColumnStats(name=name, type=type_, nulls=int(nulls), distinct=int(distinct or 0),
                                   min=lo, max=hi))
        return out

    def _describe_per_column(self, stored: str, cols: dict[str, str]) -> list:
        """Fallback for column types some aggregate refuses: each column alone, min/max left None if refused."""
        values: list = []
        for name in cols:
            c = _q(name)
            nulls = self._run(f"SELECT count(*) - count({c}) FROM {_q(stored)}")[0][0]
            try:
                distinct = self.con.execute(f"SELECT count(DISTINCT {c}) FROM {_q(stored)}").fetchall()[0][0]
            except duckdb.Error:
                distinct = 0
            try:
                lo, hi = self.con.execute(f"SELECT min({c}), max({c}) FROM {_q(stored)}").fetchall()[0]
            except duckdb.Error:
                lo = hi = None
            values += [nulls, distinct, lo, hi]
        return values

    def value_counts(self, table: str, column: str) -> list[tuple[Any, int]]:
        """``(value, rows)`` for each value of ``column`` (NULL included), ordered by value."""
        self.require_columns(table, [column])
        stored = self.resolve(table)
        c = _q(column)
        return [(v, int(n)) for v, n in
                self._run(f"SELECT {c}, count(*) FROM {_q(stored)} GROUP BY {c} ORDER BY {c} NULLS LAST")]

    def sql(self, query: str, params: Sequence[Any] | dict | None = None) -> pa.Table:
        """Run SQL (values in ``params`` are bound); the result as an Arrow table (no columns for a
        statement that returns nothing)."""
        import pyarrow as pa

        try:
            rel = self.con.sql(query, params=params)
            if rel is None:
                return pa.table({})
            return rel.arrow().read_all()
        except duckdb.Error as err:
            raise DataError(_duck_message(err)) from None

    def read_columns(self, table: str, columns: list[str], *, where: str | None = None) -> pa.Table:
        """``columns`` of ``table`` (in the order given, duplicates once), rows in table order.

        ``where`` is a SQL filter expression, such as ``"age > 30"``.
        """
        if isinstance(columns, str):
            columns = [columns]
        columns = list(dict.fromkeys(columns))
        if not columns:
            raise DataError(f"read_columns: no columns asked of table '{table}'")
        self.require_columns(table, columns)
        stored = self.resolve(table)
        query = f"SELECT {', '.join(_q(c) for c in columns)} FROM {_q(stored)}"
        if where:
            query += f" WHERE ({where})"
        try:
            return self.con.sql(query).arrow().read_all()
        except duckdb.Error as err:
            raise DataError(f"reading table '{stored}'{' where ' + where if where else ''}: "
                            f"{_duck_message(err)}") from None

    # ------------------------------------------------------------------------------------------
    # writing

    def _tmp_name(self) -> str:
        return f"{_TMP_PREFIX}{uuid.uuid4().hex}"

    def _drop_quietly(self, name: str) -> None:
        try:
            self.con.execute(f"DROP TABLE IF EXISTS {_q(name)}").fetchall()
        except duckdb.Error:
            pass

    def _check_free(self, names: Sequence[str], replace: bool) -> None:
        for name in names:
            if not isinstance(name, str) or not name:
                raise DataError(f"a table name must be a non-empty string, got {name!r}")
            if name.startswith(_TMP_PREFIX):
                raise DataError(f"table name '{name}' is reserved (prefix '{_TMP_PREFIX}')")
        if replace:
            return
        taken = [self._lookup(n) for n in names if self._lookup(n) is not None]
        if taken:
            which = ", ".join(f"'{n}'" for n in taken)
            raise DataError(f"table {which} already exists (pass replace=True / --replace to overwrite)")

    def _swap_in(self, moves: dict[str, str], replace: bool) -> None:
        """Rename each temporary table onto its target name in one transaction; drop the temporaries on failure."""
        try:
            self._check_free(list(moves.values()), replace)
            self.con.execute("BEGIN TRANSACTION").fetchall()
            try:
                entries = self._entries()
                for tmp, target in moves.items():
                    stored = self._lookup(target)
                    if stored is not None:
                        if not replace:  # appeared since the check
                            raise DataError(f"table '{stored}' already exists (pass replace=True / --replace)")
                        kind = "VIEW" if entries.get(stored) == "VIEW" else "TABLE"
                        self.con.execute(f"DROP {kind} {_q(stored)}").fetchall()
                    self.con.execute(f"ALTER TABLE {_q(tmp)} RENAME TO {_q(target)}").fetchall()
                self.con.execute("COMMIT").fetchall()
            except BaseException:
                try:
                    self.con.execute("ROLLBACK").fetchall()
                except duckdb.Error:
                    pass
                raise
        except duckdb.Error as err:
            raise DataError(_duck_message(err)) from None
        finally:
            for tmp in moves:
                self._drop_quietly(tmp)

    def _files(self, source: str | Path) -> list[str]:
        text = str(source)
        expanded = str(Path(text).expanduser())
        if _GLOB_CHARS & set(text):
            files = sorted(f for f in glob.glob(expanded, recursive=True) if Path(f).is_file())
            if not files:
                raise DataError(f"no files match '{text}'")
            return [str(Path(f).resolve()) for f in files]
        path = Path(expanded)
        if not path.exists():
            hint = None
            if path.parent.is_dir():
                hint = suggestion(path.name, [p.name for p in path.parent.iterdir()])
            if hint is None:
                hint = _bundled_hint(path.name)
            raise DataError(f"file not found: {text}" + (f" ({hint})" if hint else ""))
        if path.is_dir():
            raise DataError(f"{text} is a folder; give a file, or a pattern such as '{Path(text) / '*.csv'}'")
        return [str(path.resolve())]

    def load(self, source: str | Path, table: str, *, replace: bool = False) -> int:
        """Load CSV / TSV / Parquet / JSON / NDJSON file(s) into ``table``; the number of rows loaded.

        ``source`` may be a glob pattern; several files become one table, columns matched by name.
        The format comes from the extension (``.csv``, ``.tsv``, ``.parquet``, ``.json``, ``.jsonl``,
        ``.ndjson``, optionally compressed ``.gz`` / ``.zst``).
        """
        self._check_free([table], replace)
        files = self._files(source)
        formats = {}
        for f in files:
            fmt = _file_format(f)
            if fmt is None:
                known = ", ".join(sorted(set(_FORMATS)))
                raise DataError(f"cannot tell the format of {f} from its extension (known: {known}, "
                                f"optionally with .gz)")
            formats.setdefault(fmt, f)
        if len(formats) > 1:
            raise DataError(f"'{source}' matches files of different formats: {', '.join(sorted(formats))}")
        fmt = next(iter(formats))
        reader = {
            "csv": "read_csv(?, union_by_name = true)",
            "tsv": "read_csv(?, union_by_name = true, delim = '\t')",
            "parquet": "read_parquet(?, union_by_name = true)",
            "json": "read_json(?, union_by_name = true)",
            "ndjson": "read_json(?, format = 'newline_delimited', union_by_name = true)",
        }[fmt]
        tmp = self._tmp_name()
        try:
            self.con.execute(f"CREATE TABLE {_q(tmp)} AS SELECT * FROM {reader}", [files]).fetchall()
            rows = int(self.con.execute(f"SELECT count(*) FROM {_q(tmp)}").fetchall()[0][0])
        except duckdb.Error as err:
            self._drop_quietly(tmp)
            where = files[0] if len(files) == 1 else f"'{source}' ({len(files)} files)"
            raise DataError(f"cannot load {where}: {_duck_message(err)}") from None
        except BaseException:
            self._drop_quietly(tmp)
            raise
        self._swap_in({tmp: table}, replace)
        return rows

    def write_table(self, name: str, data: Any, *, replace: bool = True) -> None:
        """Write an Arrow table (or anything ``pyarrow.table`` takes) as table ``name``, atomically."""
        import pyarrow as pa

        if isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        elif not isinstance(data, pa.Table):
            try:
                data = pa.table(data)
            except (TypeError, ValueError, pa.ArrowException) as err:
                raise DataError(f"write_table('{name}'): cannot make an Arrow table of {type(data).__name__}: "
                                f"{err}") from None
        self._check_free([name], replace)
        tmp = self._tmp_name()
        view = f"__specml_src_{uuid.uuid4().hex}"
        try:
            self.con.register(view, data)
            try:
                self.con.execute(f"CREATE TABLE {_q(tmp)} AS SELECT * FROM {_q(view)}").fetchall()
            finally:
                self.con.unregister(view)
        except duckdb.Error as err:
            self._drop_quietly(tmp)
            raise DataError(f"write_table('{name}'): {_duck_message(err)}") from None
        except BaseException:
            self._drop_quietly(tmp)
            raise
        self._swap_in({tmp: name}, replace)

    # ------------------------------------------------------------------------------------------
    # splitting

    def split(
        self,
        table: str,
        *,
        test_size: float = 0.2,
        stratify: str | None = None,
        time_column: str | None = None,
        seed: int = 0,
        train_name: str | None = None,
        test_name: str | None = None,
        replace: bool = False,
    ) -> tuple[str, str, int, int]:
        """Split ``table`` into ``<table>_train`` and ``<table>_test``; ``(train, test, train rows, test rows)``.

        Random (``seed``), stratified on a column's values, or by time: ordered by ``time_column``,
        the last ``test_size`` fraction is the test table. Rows keep the source order in both tables.
        """
        if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1 \
                or math.isnan(test_size):
            raise DataError(f"test_size must be a fraction strictly between 0 and 1, got {test_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise DataError(f"seed must be an integer from 0 to 2**32 - 1, got {seed!r}")
        if stratify is not None and time_column is not None:
            raise DataError("split: stratify and time_column cannot be used together "
                            "(a time split takes the latest rows as the test table)")
        source = self.resolve(table)
        needed = [c for c in (stratify, time_column) if c is not None]
        if needed:
            self.require_columns(source, needed)
        train_name = train_name or f"{source}_train"
        test_name = test_name or f"{source}_test"
        if train_name.lower() == test_name.lower():
            raise DataError(f"split: the train and test tables need different names, both are '{train_name}'")
        for out in (train_name, test_name):
            if out.lower() == source.lower():
                raise DataError(f"split: output table '{out}' would overwrite the table being split")
        self._check_free([train_name, test_name], replace)

        made: list[str] = []
        try:
            base = source
            if self._entries().get(source) == "VIEW":
                base = self._tmp_name()
                made.append(base)
                self._run(f"CREATE TABLE {_q(base)} AS SELECT * FROM {_q(source)}")
            n = int(self._run(f"SELECT count(*) FROM {_q(base)}")[0][0])
            if n < 2:
                raise DataError(f"table '{source}' has {n} row(s); a split needs at least 2")
            if time_column is not None:
                test_ids = self._time_split_ids(base, source, time_column, test_size, n)
            else:
                test_ids = self._random_split_ids(base, source, stratify, test_size, seed, n)

            ids_view = f"__specml_ids_{uuid.uuid4().hex}"
            tmp_train, tmp_test = self._tmp_name(), self._tmp_name()
            made += [tmp_train, tmp_test]
            import pyarrow as pa

            self.con.register(ids_view, pa.table({"id": pa.array(test_ids, type=pa.int64())}))
            try:
                for tmp, op in ((tmp_train, "NOT IN"), (tmp_test, "IN")):
                    self._run(f"CREATE TABLE {_q(tmp)} AS SELECT * FROM {_q(base)} "
                              f"WHERE rowid {op} (SELECT id FROM {_q(ids_view)}) ORDER BY rowid")
            finally:
                self.con.unregister(ids_view)
            n_test = len(test_ids)
            self._swap_in({tmp_train: train_name, tmp_test: test_name}, replace)
        finally:
            for tmp in made:
                self._drop_quietly(tmp)
        return train_name, test_name, n - n_test, n_test

    def _time_split_ids(self, base: str, source: str, time_column: str, test_size: float, n: int) -> list[int]:
        from specml.data import split as splitting

        c = _q(time_column)
        nulls = int(self._run(f"SELECT count(*) FROM {_q(base)} WHERE {c} IS NULL")[0][0])
        if nulls:
            raise DataError(f"table '{source}': time column '{time_column}' has {nulls} NULL value(s); "
                            "a time split needs a time on every row")
        n_test = splitting.part_size(n, test_size)
        if not 0 < n_test < n:
            raise DataError(f"test_size {test_size} of {n} rows gives {n_test} test rows; both tables need rows")
        ids = self._numpy(f"SELECT rowid AS id FROM {_q(base)} ORDER BY {c}, rowid")["id"]
        _, test = splitting.cut(ids, n_test)
        return [int(i) for i in test]

    def _random_split_ids(self, base: str, source: str, stratify: str | None, test_size: float, seed: int,
                          n: int) -> list[int]:
        import numpy as np

        from specml.data import split as splitting

        if stratify is None:
            ids = self._numpy(f"SELECT rowid AS id FROM {_q(base)} ORDER BY rowid")["id"]
            labels = None
        else:
            got = self._numpy(f"SELECT rowid AS id, CAST({_q(stratify)} AS VARCHAR) AS label "
                              f"FROM {_q(base)} ORDER BY rowid")
            ids = got["id"]
            raw = got["label"]
            mask = np.ma.getmaskarray(raw) if np.ma.isMaskedArray(raw) else np.zeros(len(raw), bool)
            data = np.ma.getdata(raw) if np.ma.isMaskedArray(raw) else raw
            labels = np.array(["\x00NULL" if m or v is None else str(v) for v, m in zip(data, mask)], dtype=object)
        try:
            _, test_pos = splitting.take(np.arange(n), test_size, seed, labels)
        except splitting.SplitError as err:
            what = f"stratified on '{stratify}'" if stratify else "at random"
            raise DataError(f"cannot split table '{source}' ({n} rows) {what} with test_size {test_size}: "
                            f"{err}") from None
        ids = np.asarray(ids)
        return [int(i) for i in np.sort(ids[test_pos])]


def _bundled_hint(filename: str) -> str | None:
    """For a missing file whose name is a bundled dataset's (``pima_diabetes.csv``): the command that loads it."""
    from specml.data.builtin import DATASETS

    stem = Path(filename).name.split(".")[0].lower()
    for name in DATASETS:
        if stem == name or stem.startswith(name + "_") or (name == "pima" and stem.startswith("pima")):
            return f"bundled with specml: specml data sample {name}"
    return None
