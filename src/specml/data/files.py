"""Files specml writes and the data fingerprint: every write is atomic and survives a crash.

A write goes to a temporary file in the target's directory, is flushed and fsynced, and is moved over
the target with ``os.replace`` (then the directory is fsynced): a reader sees the old file or the new
one, never half of one. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# ----------------------------------------------------------------------------------------------
# atomic writes


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path``; if the block succeeds it replaces ``path`` atomically.

    The block writes the temporary file any way it likes (``safetensors.torch.save_file``, ...).
    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would make it (mkstemp makes 0600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync(path.parent)


@contextlib.contextmanager
def atomic_open(path: Path) -> Iterator[IO[bytes]]:
    """``open(path, "wb")``, atomically: the file appears complete when the block succeeds, or not at all."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8, exactly (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write strict JSON (indent 2, key order kept). NumPy scalars become numbers, tuples lists;
    anything else that is not JSON (a Path, a set, a non-string key, nan, inf) is an error naming where."""
    text = json.dumps(_plain_json(obj, "$"), indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text + "\n")


def _fsync(path: Path) -> None:
    """Flush a file, or a directory's entries, to disk."""
    if path.is_dir() and os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _numpy_scalar(obj: Any) -> Any:
    """A NumPy scalar as the Python number it holds; anything else unchanged."""
    np = sys.modules.get("numpy")
    return obj.item() if np is not None and isinstance(obj, np.generic) else obj


def _plain_json(obj: Any, where: str) -> Any:
    obj = _numpy_scalar(obj)
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"{where}: {obj} is not a JSON number")
        return obj
    if isinstance(obj, list | tuple):
        return [_plain_json(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise TypeError(f"{where}: the key {key!r} is not a string")
        return {k: _plain_json(v, f"{where}.{k}") for k, v in obj.items()}
    raise TypeError(f"{where}: a {type(obj).__name__} is not a JSON value")


# ----------------------------------------------------------------------------------------------
# tables written to files


def is_list_type(typ: Any) -> bool:
    """Whether an Arrow type is a list (token sequences)."""
    import pyarrow as pa

    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def write_table_file(table: Any, path: Path) -> None:
    """An Arrow table as a .csv or .parquet file, atomically. CSV has no lists: a list cell is written
    as ``"[3, 1, 4]"``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        from specml.data.workspace import DataError

        raise DataError(f"--output {path}: write .csv or .parquet")
    if suffix == ".csv":
        for i, fld in enumerate(table.schema):
            if is_list_type(fld.type):
                text = pa.array([None if v is None else "[" + ", ".join(map(str, v)) + "]"
                                 for v in table.column(i).to_pylist()], pa.string())
                table = table.set_column(i, fld.name, text)
    with atomic_path(path) as tmp:
        (pacsv.write_csv if suffix == ".csv" else pq.write_table)(table, str(tmp))


# ----------------------------------------------------------------------------------------------
# the data fingerprint


def fingerprint(con: Any, table: str) -> tuple[int, str | None]:
    """Row count and an order-independent hash of every row of a DuckDB table (``con``: a DuckDB
    connection or a :class:`specml.data.workspace.Workspace`). Changes when any value changes.

    The one fingerprint of a table specml records: runs, resume checks and the registry's lineage."""
    con = getattr(con, "con", con)
    quoted = '"' + table.replace('"', '""') + '"'
    rows, digest = con.execute(f"SELECT count(*), (sum(hash(t)::HUGEINT) % 18446744073709551616)::UBIGINT "
                               f"FROM {quoted} t").fetchall()[0]
    return int(rows), None if digest is None else f"duckdb:{int(digest):016x}"


def stamped_dir(base: Path, name: str) -> Path:
    """A new, empty directory ``base/<UTC timestamp>_<name>`` (a ``-N`` suffix on the stamp keeps it unique)."""
    from datetime import UTC, datetime

    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = base / (f"{stamp}_{name}" if i == 0 else f"{stamp}-{i}_{name}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a directory for '{name}' under {base}")
