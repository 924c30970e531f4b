"""A table's profile, read with SQL: per column its kind, NULLs, distinct values, range, mean, and
whether it looks like an identifier or a constant; and, once the target is known, leakage suspects.

What a column is for a model (:meth:`ColumnProfile.role`):

* ``entity``: an identifier whose values repeat (a user, an item, a store: at most one distinct value
  per :data:`ENTITY_REPEAT` rows), or text with more than ``MAX_CATEGORIES`` distinct values that repeat
  the same way: embedded (vocabulary fitted on the training rows, unknown values -> a reserved id);
* ``identifier``: an identifier whose values do not repeat (a row id): left out;
* ``timestamp``: a date/time column, or a number named like a time (``*time*``, ``*date*``, ``*timestamp*``,
  ``ts``, ``epoch``) whose values are epoch seconds or milliseconds (1973-2100) or yyyymmdd dates: left out
  (not fed as a raw number);
* ``None``: an ordinary numeric or categorical column.

The column statistics come from aggregate queries over the table, a few columns each (``count(DISTINCT ...)``
is exact up to :data:`EXACT_DISTINCT_ROWS` rows, ``approx_count_distinct`` above); so do the leakage checks
of each target.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from specml.data.workspace import DESCRIBE_CHUNK, DataError, Workspace, quote_ident

__all__ = ["ColumnProfile", "LeakageSuspect", "TableProfile", "column_kind", "profile_table"]

EXACT_DISTINCT_ROWS = 5_000_000
ENTITY_REPEAT = 2  # an identifier is an entity when it has at most one distinct value per this many rows
_TIME_NAME = re.compile(r"(?:^|_)(?:time|date|datetime|timestamp|ts|epoch|unixtime|created|updated)(?:_|$)"
                        r"|(?:time|date|stamp)(?:_|$)")
_EPOCH_RANGES = ((1e8, 4.2e9), (1e11, 4.2e12), (19_000_101, 21_001_231))  # seconds, milliseconds, yyyymmdd
CORRELATION_LEAK = 0.99  # |corr(column, target)| at or above this is a leakage suspect
_ID_NAME = re.compile(r"^(?:id|uuid|guid|key|index|idx|row_?id|row_?num(?:ber)?|.*_(?:id|uuid|guid|key)|.*[a-z]Id|"
                      r"(?:id|uuid)_.*)$")


def column_kind(duck_type: str) -> str:
    """integer | float | bool | string | temporal | other, from a DuckDB type name."""
    t = duck_type.upper()
    if t == "BOOLEAN":
        return "bool"
    if re.match(r"^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|U?INT\d+)$", t):
        return "integer"
    if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t in ("VARCHAR", "TEXT", "STRING") or t.startswith(("ENUM", "VARCHAR")):
        return "string"
    if t.startswith(("DATE", "TIMESTAMP", "TIME")):
        return "temporal"
    return "other"


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


@dataclass
class ColumnProfile:
    name: str
    type: str
    kind: str
    nulls: int
    distinct: int
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    id_like: bool = False
    constant: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "float", "bool")

    def repeats(self, rows: int) -> bool:
        """Each value stands for several rows (at most one distinct value per ENTITY_REPEAT non-NULL rows)."""
        return 2 <= self.distinct and self.distinct * ENTITY_REPEAT <= rows - self.nulls

    def timestamp_like(self) -> bool:
        """A date/time, or a number named like one whose values are epoch seconds/milliseconds or yyyymmdd."""
        if self.kind == "temporal":
            return True
        if self.kind not in ("integer", "float") or self.min is None or self.max is None:
            return False
        snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", self.name).lower()
        if not _TIME_NAME.search(snake):
            return False
        lo, hi = float(self.min), float(self.max)
        return any(a <= lo and hi <= b for a, b in _EPOCH_RANGES)

    def role(self, rows: int, max_categories: int) -> str | None:
        """entity | identifier | timestamp | None (see the module doc)."""
        if self.timestamp_like():
            return "timestamp"
        if self.id_like:
            return "entity" if self.repeats(rows) else "identifier"
        if self.kind == "string" and self.distinct > max_categories and self.repeats(rows):
            return "entity"
        return None

    def to_dict(self) -> dict:
        return {k: _plain(v) for k, v in self.__dict__.items()}


@dataclass
class LeakageSuspect:
    column: str
    target: str
    reason: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TableProfile:
    """What the compiler knows of a table. ``workspace`` (not serialised) allows the leakage query."""

    table: str
    rows: int
    columns: list[ColumnProfile]
    workspace: Workspace | None = field(default=None, repr=False, compare=False)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnProfile:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"table": self.table, "rows": self.rows, "columns": [c.to_dict() for c in self.columns]}

    @staticmethod
    def from_dict(d: dict) -> TableProfile:
        return TableProfile(d["table"], int(d["rows"]), [ColumnProfile(**c) for c in d["columns"]])

    def leakage(self, targets: list[str]) -> list[LeakageSuspect]:
        """Columns that give a target away (identical, one-to-one, |correlation| >= 0.99); [] without SQL."""
        if self.workspace is None:
            return []
        return leakage_suspects(self.workspace, self.table, self, targets)

    def value_counts(self, column: str, limit: int = 50) -> list[tuple[Any, int]] | None:
        if self.workspace is None:
            return None
        c = quote_ident(column)
        rows = self.workspace._run(f"SELECT {c}, count(*) AS n FROM {quote_ident(self.table)} GROUP BY {c} "
                                   f"ORDER BY n DESC, {c} NULLS LAST LIMIT {int(limit)}")
        return [(_plain(v), int(n)) for v, n in rows]


def _aggregates(workspace: Workspace, table: str, exprs: list[str], per_column: int) -> list:
    """The values of aggregate ``exprs`` (``per_column`` for each column) over ``table``, in one query per
    :data:`DESCRIBE_CHUNK` columns: DuckDB's planning time grows with the square of the aggregates in one
    SELECT, so chunks keep a profile near-linear in columns (2,000 in seconds)."""
    step = DESCRIBE_CHUNK * per_column
    values: list = []
    for start in range(0, len(exprs), step):
        values += workspace._run(f"SELECT {', '.join(exprs[start:start + step])} FROM {quote_ident(table)}")[0]
    return values


def profile_table(workspace: Workspace, table: str) -> TableProfile:
    """Profile ``table`` of ``workspace``: one aggregate query for every column."""
    stored = workspace.resolve(table)
    types = workspace.columns(stored)
    rows = workspace.row_count(stored)
    if not types:
        raise DataError(f"table '{stored}' has no columns")
    distinct_fn = "count(DISTINCT {c})" if rows <= EXACT_DISTINCT_ROWS else "approx_count_distinct({c})"
    exprs: list[str] = []
    kinds = {name: column_kind(t) for name, t in types.items()}
    for name, kind in kinds.items():
        c = quote_ident(name)
        exprs.append(f"count(*) - count({c})")
        exprs.append(distinct_fn.format(c=c) if kind != "other" else "NULL")
        if kind in ("integer", "float", "bool"):
            num = f"CAST({c} AS DOUBLE)"
            exprs += [f"min({num})", f"max({num})", f"avg({num})", f"stddev_pop({num})"]
        elif kind in ("string", "temporal"):
            exprs += [f"min({c})", f"max({c})", "NULL", "NULL"]
        else:
            exprs += ["NULL", "NULL", "NULL", "NULL"]
    values = _aggregates(workspace, stored, exprs, 6)
    columns = []
    for i, (name, duck_type) in enumerate(types.items()):
        nulls, distinct, lo, hi, mean, std = values[6 * i: 6 * i + 6]
        kind = kinds[name]
        distinct = int(distinct or 0)
        non_null = rows - int(nulls)
        unique = non_null >= 20 and distinct == non_null
        # an identifier: named like one, unique text, or unique consecutive integers (1..n)
        id_like = (bool(_ID_NAME.match(name)) and kind in ("integer", "string")) or (unique and kind == "string") or (
            unique and kind == "integer" and lo is not None and float(hi) - float(lo) == non_null - 1)
        columns.append(ColumnProfile(
            name=name, type=duck_type, kind=kind, nulls=int(nulls), distinct=distinct, min=_plain(lo),
            max=_plain(hi), mean=_plain(mean), std=_plain(std), id_like=id_like, constant=distinct <= 1))
    return TableProfile(stored, rows, columns, workspace)


def leakage_suspects(workspace: Workspace, table: str, profile: TableProfile,
                     targets: list[str]) -> list[LeakageSuspect]:
    """Columns identical to a target, mapping one-to-one onto it, or correlated with it at |r| >= 0.99."""
    out: list[LeakageSuspect] = []
    for target in targets:
        tp = profile.column(target)
        t = quote_ident(target)
        others = [c for c in profile.columns if c.name != target and c.kind != "other" and not c.constant]
        if not others:
            continue
        exprs = []
        for c in others:
            q = quote_ident(c.name)
            both_numeric = c.numeric and tp.numeric
            as_ = "DOUBLE" if both_numeric else "VARCHAR"  # 1 and 1.0 are the same value
            exprs.append(f"count(*) FILTER (WHERE CAST({q} AS {as_}) IS DISTINCT FROM CAST({t} AS {as_}))")
            exprs.append(f"count(DISTINCT [CAST({q} AS VARCHAR), CAST({t} AS VARCHAR)])")
            exprs.append(f"corr(CAST({q} AS DOUBLE), CAST({t} AS DOUBLE))" if both_numeric else "NULL")
        values = _aggregates(workspace, table, exprs, 3)
        for i, c in enumerate(others):
            differ, pairs, r = values[3 * i: 3 * i + 3]
            if int(differ) == 0:
                out.append(LeakageSuspect(c.name, target, f"identical to the target '{target}'"))
            elif (tp.distinct <= 50 and int(pairs) == c.distinct == tp.distinct and c.nulls == 0
                  and tp.distinct < profile.rows):
                out.append(LeakageSuspect(c.name, target, f"maps one-to-one onto the target '{target}' "
                                                          f"({c.distinct} values)"))
            elif r is not None and math.isfinite(float(r)) and abs(float(r)) >= CORRELATION_LEAK:
                out.append(LeakageSuspect(c.name, target, f"correlation {float(r):+.3f} with the target '{target}'"))
    return out
