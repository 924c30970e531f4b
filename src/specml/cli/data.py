"""``specml data ...`` and ``specml sql``: the workspace from the command line.

A thin layer over :class:`specml.data.workspace.Workspace`. duckdb, pyarrow and rich are imported inside
the commands, so importing this module (which ``specml --help`` does) stays light. A
:class:`~specml.data.workspace.DataError` prints ``error: <message>`` on stderr and exits 1.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from specml.cli.options import Group, WorkspaceOption
from specml.cli.output import console, esc, fail, user_errors

if TYPE_CHECKING:
    from specml.data.workspace import Workspace

data_app = typer.Typer(cls=Group, help="Tables in the workspace: load, list, describe, split.", no_args_is_help=True)

@contextmanager
def _workspace(path: str | None) -> Iterator[Workspace]:
    """Open the workspace; a stray DuckDB error becomes ``error: <its first line>`` and exit 1."""
    import duckdb

    from specml.data.workspace import Workspace
    from specml.home import workspace_path

    try:
        with Workspace(workspace_path(path)) as ws:
            yield ws
    except duckdb.Error as err:
        fail(str(err).splitlines()[0] if str(err) else type(err).__name__)


def _cell(value: Any) -> str:
    """A value as shown in a table."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    return str(value)


def _jsonable(value: Any) -> Any:
    """A value JSON can carry: NaN/inf -> null, dates -> ISO text, Decimal -> number, bytes -> hex text."""
    import datetime as dt
    from decimal import Decimal

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex()
    return str(value)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)):
        return "\\x" + bytes(value).hex()
    return str(value)


def _rich_table(result, limit: int, title: str | None = None):
    """An Arrow table as a rich Table of its first ``limit`` rows."""
    import pyarrow as pa
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for field in result.schema:
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type) or \
            pa.types.is_decimal(field.type)
        table.add_column(Text(field.name), justify="right" if numeric else "left")
    shown = result.slice(0, limit)
    columns = [col.to_pylist() for col in shown.columns]
    for i in range(shown.num_rows):
        table.add_row(*[Text(_cell(col[i]), style="dim" if col[i] is None else "") for col in columns])
    return table


# ------------------------------------------------------------------------------------------------
# commands


@data_app.command("load")
@user_errors
def load(
    source: Annotated[str, typer.Argument(help="A .csv/.tsv/.parquet/.json/.jsonl/.ndjson file (optionally .gz), "
                                               "or a glob such as 'data/*.csv' (quoted) for several files.",
                                          show_default=False)],
    table: Annotated[str, typer.Option("--table", "-t", help="Name of the table to create.", show_default=False)],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite the table if it exists.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Load a file (or files matching a glob) into a workspace table."""
    with _workspace(workspace) as ws:
        rows = ws.load(source, table, replace=replace)
        ncols = len(ws.columns(table))
        name = ws.resolve(table)
        console().print(f"loaded {rows:,} rows, {ncols} columns from {esc(source)} into table "
                        f"[bold]'{esc(name)}'[/bold] ({esc(ws.path)})")


@data_app.command("tables")
@user_errors
def tables(workspace: WorkspaceOption = None) -> None:
    """List the workspace tables: name, rows, columns."""
    from rich.table import Table
    from rich.text import Text

    with _workspace(workspace) as ws:
        infos = ws.tables()
        screen = console()
        if not infos:
            screen.print(f"no tables in {esc(ws.path)}; load one with: specml data load FILE --table NAME")
            return
        table = Table(title=f"tables in {esc(ws.path)}", title_justify="left")
        table.add_column("name")
        table.add_column("rows", justify="right")
        table.add_column("columns", justify="right")
        for info in infos:
            table.add_row(Text(info.name), f"{info.rows:,}", str(info.columns))
        screen.print(table)


@data_app.command("describe")
@user_errors
def describe(
    table: Annotated[str, typer.Argument(help="A workspace table.", show_default=False)],
    workspace: WorkspaceOption = None,
) -> None:
    """Describe a table's columns: type, nulls, distinct values, min, max."""
    from rich.table import Table
    from rich.text import Text

    with _workspace(workspace) as ws:
        stats = ws.describe(table)
        rows = ws.row_count(table)
        name = ws.resolve(table)
        out = Table(title=f"{esc(name)}: {rows:,} rows, {len(stats)} columns", title_justify="left")
        out.add_column("column")
        out.add_column("type")
        out.add_column("nulls", justify="right")
        out.add_column("distinct", justify="right")
        out.add_column("min", justify="right")
        out.add_column("max", justify="right")
        for s in stats:
            out.add_row(Text(s.name), Text(s.type), f"{s.nulls:,}", f"{s.distinct:,}", Text(_cell(s.min)),
                        Text(_cell(s.max)))
        console().print(out)


@data_app.command("split")
@user_errors
def split(
    table: Annotated[str, typer.Argument(help="The workspace table to split.", show_default=False)],
    test_size: Annotated[float, typer.Option("--test-size", help="Fraction of rows in the test table (0 < f < 1).")]
    = 0.2,
    stratify: Annotated[str | None, typer.Option("--stratify", help="Keep this column's class ratios in both tables.",
                                                 show_default=False)] = None,
    time_column: Annotated[str | None, typer.Option("--time-column", help="Order by this column; the latest rows "
                                                    "become the test table (no shuffling).", show_default=False)]
    = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the shuffle.")] = 0,
    train_name: Annotated[str | None, typer.Option("--train-name", help="Train table name [default: TABLE_train].",
                                                   show_default=False)] = None,
    test_name: Annotated[str | None, typer.Option("--test-name", help="Test table name [default: TABLE_test].",
                                                  show_default=False)] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite existing train/test tables.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Split a table into TABLE_train and TABLE_test (random, stratified, or by time)."""
    from rich.table import Table
    from rich.text import Text

    with _workspace(workspace) as ws:
        train, test, n_train, n_test = ws.split(table, test_size=test_size, stratify=stratify,
                                                time_column=time_column, seed=seed, train_name=train_name,
                                                test_name=test_name, replace=replace)
        screen = console()
        how = (f"stratified on '{stratify}', seed {seed}" if stratify else
               f"by '{time_column}' (latest rows in test)" if time_column else f"random, seed {seed}")
        screen.print(f"split '{esc(ws.resolve(table))}' ({esc(how)}):")
        screen.print(f"  train: [bold]'{esc(train)}'[/bold] {n_train:,} rows")
        screen.print(f"  test:  [bold]'{esc(test)}'[/bold] {n_test:,} rows")
        if stratify:
            train_counts = dict(ws.value_counts(train, stratify))
            test_counts = dict(ws.value_counts(test, stratify))
            classes = list(dict.fromkeys([*train_counts, *test_counts]))
            out = Table(title=f"'{esc(stratify)}' per split", title_justify="left")
            out.add_column("class")
            out.add_column("train", justify="right")
            out.add_column("test", justify="right")
            for value in classes:
                a, b = train_counts.get(value, 0), test_counts.get(value, 0)
                out.add_row(Text(_cell(value)), f"{a:,} ({a / max(n_train, 1):.1%})",
                            f"{b:,} ({b / max(n_test, 1):.1%})")
            screen.print(out)


def _sample_help() -> str:
    from specml.data.builtin import DATASETS

    lines = "\n".join(f"* {d.name}: {d.summary} (target {d.target})" for d in DATASETS.values())
    return ("Load a bundled real dataset (no download) into a workspace table.\n\n" + lines +
            "\n\nThe table is named after the dataset unless --table is given.")


@data_app.command("sample", help=_sample_help())
@user_errors
def sample(
    name: Annotated[str, typer.Argument(help="A bundled dataset: pima, pima_categorical, wine, digits, diabetes, "
                                             "linnerud, breast_cancer, iris.", show_default=False)],
    table: Annotated[str | None, typer.Option("--table", "-t", help="Table to create [default: the dataset's name].",
                                              show_default=False)] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite the table if it exists.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    from specml.data import builtin

    if name not in builtin.DATASETS:
        from specml.spec.errors import suggestion

        hint = suggestion(name, builtin.DATASETS)
        fail(f"unknown dataset '{name}'" + (f" ({hint})" if hint else "") +
              f"; bundled datasets: {', '.join(builtin.DATASETS)}")
    target = table or name
    with _workspace(workspace) as ws:
        if ws.has_table(target) and not replace:
            fail(f"table '{ws.resolve(target)}' already exists (pass --replace to overwrite)")
        data = builtin.load(name)
        ws.write_table(target, data, replace=replace)
        info = builtin.DATASETS[name]
        console().print(f"loaded {data.num_rows:,} rows, {data.num_columns} columns of '{esc(name)}' into table "
                        f"[bold]'{esc(target)}'[/bold] ({esc(ws.path)}); {info.task} target: {esc(info.target)}")


@data_app.command("collatz")
@user_errors
def collatz(
    train: Annotated[int, typer.Option("--train", min=1, help="Rows of the training table.")] = 20_000,
    test: Annotated[int, typer.Option("--test", min=1, help="Rows of the test table (integers never in training).")]
    = 2_000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the draw.")] = 0,
    min_n: Annotated[int, typer.Option("--min-n", min=1, help="Smallest integer drawn.")] = 1,
    max_n: Annotated[int, typer.Option("--max-n", min=1, help="Largest integer drawn (at most 10^12). "
                                                              "Default 24^5: inputs of up to 5 base-24 digits.")]
    = 24**5,
    order: Annotated[str, typer.Option("--order", help="Digit order: lsb (least significant first) or msb.")] = "lsb",
    prefix: Annotated[str, typer.Option("--table-prefix", help="Tables <prefix>_train and <prefix>_test.")]
    = "collatz",
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite the tables if they exist.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Make the Collatz long-step tables: odd n -> kappa(n), digits in base 24, pad token 24.

    Columns: n, n_digits INTEGER[], kappa, kappa_digits INTEGER[]. The train and test integers are
    one seeded draw without replacement, split in two: no integer is in both tables.
    """
    from specml.data.collatz import MAX_N, PAD, collatz_table

    if order not in ("lsb", "msb"):
        from specml.spec.errors import suggestion

        hint = suggestion(order, ["lsb", "msb"])
        fail(f"--order must be lsb or msb, got '{order}'" + (f" ({hint})" if hint else ""))
    if max_n > MAX_N:
        fail(f"--max-n {max_n:,} is above {MAX_N:,} (kappa must stay exact in a BIGINT column)")
    if min_n > max_n:
        fail(f"--min-n {min_n:,} is above --max-n {max_n:,}")
    names = (f"{prefix}_train", f"{prefix}_test")
    with _workspace(workspace) as ws:
        taken = [ws.resolve(n) for n in names if ws.has_table(n)]
        if taken and not replace:
            fail(f"table {', '.join(repr(t) for t in taken)} already exists (pass --replace to overwrite)")
        try:
            tables = collatz_table(train, test, seed=seed, min_n=min_n, max_n=max_n, order=order)
        except ValueError as err:
            fail(str(err))
        for name, data in zip(names, tables):
            ws.write_table(name, data, replace=True)
        longest = max(max(t.column(c).combine_chunks().value_lengths().to_numpy().max() for t in tables)
                      for c in ("n_digits", "kappa_digits"))
        console().print(f"wrote {tables[0].num_rows:,} rows to [bold]'{names[0]}'[/bold] and "
                        f"{tables[1].num_rows:,} rows to [bold]'{names[1]}'[/bold] ({esc(ws.path)}): odd n in "
                        f"[{min_n:,}, {max_n:,}], seed {seed}, base 24 {order} first, pad token {PAD}; "
                        f"longest digit list {longest}")


@user_errors
def sql(
    query: Annotated[str, typer.Argument(help="A SQL query run in the workspace.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of row objects.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (with a header) to stdout.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=0, show_default=False,
                                              help="Rows to print [default: 50 for the table; all for --json/--csv]."
                                              )] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Run SQL in the workspace and show the result (a table, --json or --csv)."""
    if as_json and as_csv:
        fail("--json and --csv cannot be used together", code=2)
    with _workspace(workspace) as ws:
        result = ws.sql(query)
    total = result.num_rows
    if as_json or as_csv:
        if limit is not None:
            result = result.slice(0, limit)
        names = result.column_names
        columns = [col.to_pylist() for col in result.columns]
        if as_json:
            rows = [{name: _jsonable(col[i]) for name, col in zip(names, columns)} for i in range(result.num_rows)]
            typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        else:
            import csv

            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(names)
            for i in range(result.num_rows):
                writer.writerow([_csv_cell(col[i]) for col in columns])
            sys.stdout.flush()
        return
    screen = console()
    if result.num_columns == 0:
        screen.print("ok")
        return
    shown = min(total, 50 if limit is None else limit)
    screen.print(_rich_table(result, shown))
    if shown < total:
        screen.print(f"{total:,} rows, showing the first {shown:,} (--limit N to change, --csv/--json for all)")
    else:
        screen.print(f"{total:,} row{'s' if total != 1 else ''}")


__all__ = ["data_app", "sql"]
