"""The facts of a run, as files other tools can read: ``events.jsonl`` and ``scalars.csv``.

A duck-typed callback of :class:`specml.train.engine.Trainer` (rank 0 only, as every callback).

* ``events.jsonl``: one JSON object per line, one line per event (``on_start``, ``on_epoch_end``,
  ``on_early_stop``, ``on_train_end``, ``on_exception``). Every line has the same fields
  (:data:`EVENT_FIELDS`); ``on_start`` adds the run's context (git commit, host, device, seed,
  library versions, ...).
* ``scalars.csv``: one row per epoch and split (train, val). The header is decided at train start
  from the monitor names the run reports, so columns never drift; a value a split does not report
  is an empty cell.

Both files are opened in append mode and flushed (and fsync'ed) after every epoch, before the engine
writes that epoch's checkpoint: a crash loses at most the epoch in progress. A resumed run appends to
the same files, without a second header, after dropping what was logged for epochs later than its
checkpoint (a crash between the facts and the checkpoint): the resumed run logs those epochs again.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specml.data.files import atomic_write_text

SCHEMA_VERSION = 1
EVENTS_FILE = "events.jsonl"
SCALARS_FILE = "scalars.csv"

#: the fields every event line carries (``None`` where the event has no value)
EVENT_FIELDS = ("schema_version", "run_id", "event", "timestamp", "epoch", "step", "losses", "metrics", "lr",
                "epoch_time_s", "throughput", "max_memory_mib")

SPLITS = ("train", "val")


def new_run_id() -> str:
    """A fresh run id: UTC time (sortable) and 6 random hex digits, e.g. ``20250102-130405-3fa9c1``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def scalars_header(keys: Iterable[str]) -> list[str]:
    """The ``scalars.csv`` columns for a run reporting monitor ``keys`` (``train_loss``, ``val_auc``, ...):
    ``epoch, split, step, loss, <metrics>, lr, epoch_time_s, throughput, max_memory_mib`` (training rows
    per second, peak memory: the epoch's, on both rows). Metrics are in the order of the ``val_``
    keys (the run's metric list), then any train-only ones."""
    keys = list(keys)
    metrics: list[str] = []
    for split in ("val", "train"):
        for key in keys:
            prefix, _, name = key.partition("_")
            if prefix == split and name and name != "loss" and name not in metrics:
                metrics.append(name)
    return ["epoch", "split", "step", "loss", *metrics, "lr", "epoch_time_s", "throughput", "max_memory_mib"]


def git_commit(cwd: str | Path | None = None, timeout: float = 2.0) -> str | None:
    """``git rev-parse HEAD`` in ``cwd`` (default: the working directory); None outside a repository."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def max_memory_mib(device: Any = None) -> float | None:
    """Peak memory in MiB: CUDA max allocated on a CUDA device, else the process's max resident set."""
    torch = sys.modules.get("torch")
    if torch is not None and device is not None and getattr(device, "type", str(device)) == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 2)
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 2)


def training_rows(loader: Any) -> int | None:
    """Rows one epoch of ``loader`` trains on (this rank's share), or None when it cannot be told."""
    if loader is None:
        return None
    try:
        batches = len(loader)
    except TypeError:
        return None
    batch_size = getattr(loader, "batch_size", None)
    if hasattr(loader, "_local_rows"):  # TensorBatches
        rows = loader._local_rows()
    elif hasattr(loader, "dataset") and hasattr(loader.dataset, "__len__") and getattr(loader, "sampler", None) \
            is not None and hasattr(loader.sampler, "__len__"):
        rows = len(loader.sampler)  # a DataLoader: the sampler knows this rank's rows
    else:
        return None
    if getattr(loader, "drop_last", False) and batch_size:
        rows = min(rows, batches * batch_size)
    return rows


def _number(value: Any) -> Any:
    """A JSON-safe number: floats stay floats, nan/inf become None (JSON has neither)."""
    if hasattr(value, "item") and not isinstance(value, int | float):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _split_logs(logs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    losses, metrics = {}, {}
    for key, value in logs.items():
        split, _, name = key.partition("_")
        if split not in SPLITS or not name:
            continue
        if name == "loss":
            losses[split] = _number(value)
        else:
            metrics[key] = _number(value)
    return losses, metrics


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # nan / inf are written as such (pandas reads them)
    return str(value)


class FactsWriter:
    """Write ``events.jsonl`` and ``scalars.csv`` for one run into ``directory``.

    ``metadata`` goes into the ``on_start`` event as given (``seed``, ``name``, ``task``,
    ``resumed_from_epoch``, ...); git commit, hostname, device and library versions are added unless
    given. ``run_id`` defaults to :func:`new_run_id`; a resumed run may pass its original id.
    ``flush_every_epoch`` fsyncs the files after every epoch (they are always flushed).
    """

    def __init__(self, directory: str | Path, run_id: str | None = None, metadata: dict[str, Any] | None = None,
                 flush_every_epoch: bool = True) -> None:
        self.directory = Path(directory)
        self.run_id = run_id or new_run_id()
        self.metadata = dict(metadata or {})
        reserved = sorted(set(self.metadata) & set(EVENT_FIELDS))
        if reserved:
            raise ValueError(f"metadata may not set the event field(s) {', '.join(reserved)}; "
                             f"those are: {', '.join(EVENT_FIELDS)}")
        self.flush_every_epoch = flush_every_epoch
        self.events_path = self.directory / EVENTS_FILE
        self.scalars_path = self.directory / SCALARS_FILE
        self.header: list[str] = []
        self._events = None
        self._scalars = None
        self._csv = None
        self._started = 0.0
        self._last_logs: dict[str, Any] = {}
        self._dropped: list[str] = []

    # -- files --------------------------------------------------------------------------------------

    def _open(self, keys: Sequence[str], epoch: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._events = _open_append(self.events_path, lambda line: _event_epoch(line) <= epoch)
        wanted = scalars_header(keys)
        self._scalars = _open_append(self.scalars_path, lambda line: _row_epoch(line) <= epoch)
        existing = _read_header(self.scalars_path)
        self._csv = csv.writer(self._scalars, lineterminator="\n")
        if existing is None:
            self.header = wanted
            self._csv.writerow(self.header)
        else:  # a resumed run: the file's header wins, so the columns never drift
            self.header = existing
            self._dropped = [c for c in wanted if c not in existing]
        self._flush(sync=True)

    def _flush(self, sync: bool) -> None:
        for f in (self._events, self._scalars):
            if f is not None and not f.closed:
                f.flush()
                if sync:
                    os.fsync(f.fileno())

    def close(self) -> None:
        self._flush(sync=True)
        for f in (self._events, self._scalars):
            if f is not None and not f.closed:
                f.close()

    # -- events -------------------------------------------------------------------------------------

    def _event(self, event: str, trainer: Any, **fields: Any) -> dict[str, Any]:
        record = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "event": event,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "epoch": getattr(trainer, "epoch", None),
            "step": getattr(trainer, "global_step", None),
            "losses": {},
            "metrics": {},
            "lr": None,
            "epoch_time_s": None,
            "throughput": None,
            "max_memory_mib": max_memory_mib(_device(trainer)),
        }
        record.update(fields)
        return record

    def _write(self, record: dict[str, Any]) -> None:
        if self._events is None or self._events.closed:
            return
        self._events.write(json.dumps(record, allow_nan=False, default=str, ensure_ascii=False) + "\n")
        self._events.flush()

    # -- callback hooks -----------------------------------------------------------------------------

    def on_train_start(self, trainer: Any, keys: Sequence[str], num_epochs: int) -> None:
        self._started = time.perf_counter()
        self._open(keys, int(getattr(trainer, "epoch", 0) or 0))  # a resumed run's epoch: its checkpoint's
        context = dict(self.metadata)
        context.setdefault("git_commit", git_commit())
        context.setdefault("hostname", socket.gethostname())
        context.setdefault("platform", platform.platform())
        context.setdefault("pid", os.getpid())
        context.setdefault("device", str(_device(trainer)) if _device(trainer) is not None else None)
        context.setdefault("seed", None)
        if "versions" not in context:
            from specml.artifact import library_versions

            context["versions"] = library_versions()
        context["num_epochs"] = num_epochs
        context["keys"] = list(keys)
        context["scalars_columns"] = self.header
        if self._dropped:
            context["scalars_columns_dropped"] = self._dropped
        self._write(self._event("on_start", trainer, **_jsonable(context)))
        self._flush(sync=True)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any], improved: bool) -> None:
        self._last_logs = dict(logs)
        losses, metrics = _split_logs(logs)
        seconds = _number(logs.get("epoch_time_s"))
        rows = training_rows(getattr(trainer, "train_loader", None))  # this rank's share
        world = getattr(getattr(trainer, "runtime", None), "world_size", 1) or 1
        throughput = round(rows * world / seconds, 3) if rows is not None and seconds else None
        event = self._event("on_epoch_end", trainer, epoch=epoch, losses=losses, metrics=metrics,
                            lr=_number(logs.get("lr")), epoch_time_s=seconds, throughput=throughput,
                            improved=bool(improved))
        self._write(event)
        self._write_rows(trainer, epoch, logs, throughput=throughput, max_memory_mib=event["max_memory_mib"])
        self._flush(sync=self.flush_every_epoch)

    def on_early_stop(self, trainer: Any, epoch: int, best_epoch: int | None, best_value: float | None) -> None:
        self._write(self._event("on_early_stop", trainer, epoch=epoch, monitor=getattr(trainer, "monitor", None),
                                best_epoch=best_epoch, best_value=_number(best_value)))
        self._flush(sync=self.flush_every_epoch)

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        losses, metrics = _split_logs(self._last_logs)
        self._write(self._event("on_exception", trainer, losses=losses, metrics=metrics,
                                error={"type": type(error).__name__, "message": str(error)},
                                total_time_s=round(time.perf_counter() - self._started, 3)))
        self.close()

    def on_train_end(self, trainer: Any, history: dict, best_epoch: int | None, best_value: float | None) -> None:
        losses, metrics = _split_logs(self._last_logs)
        self._write(self._event("on_train_end", trainer, losses=losses, metrics=metrics,
                                lr=_number(self._last_logs.get("lr")),
                                monitor=getattr(trainer, "monitor", None), best_epoch=best_epoch,
                                best_value=_number(best_value),
                                epochs_run=len(history.get("train_loss", [])),
                                total_time_s=round(time.perf_counter() - self._started, 3)))
        self.close()

    def _write_rows(self, trainer: Any, epoch: int, logs: dict[str, Any], **per_epoch: Any) -> None:
        if self._csv is None:
            return
        step = getattr(trainer, "global_step", None)
        for split in SPLITS:
            if f"{split}_loss" not in logs:
                continue
            row = {"epoch": epoch, "split": split, "step": step, "lr": logs.get("lr"),
                   "epoch_time_s": logs.get("epoch_time_s"), **per_epoch}
            for key, value in logs.items():
                if key.startswith(split + "_"):
                    row[key[len(split) + 1:]] = value
            self._csv.writerow([_cell(_plain(row.get(col))) for col in self.header])


# ----------------------------------------------------------------------------------------------
# reading back


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """The events of an ``events.jsonl`` (a directory holding one is fine too). A torn last line (a crash
    mid-write) is skipped; a bad line elsewhere is an error naming the file and line."""
    path = Path(path)
    if path.is_dir():
        path = path / EVENTS_FILE
    lines = path.read_text(encoding="utf-8").split("\n")
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):  # the last line, without its newline: torn by a crash
                break
            raise ValueError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    return events


def read_scalars(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and rows of a ``scalars.csv`` (or a directory holding one). Numbers become floats
    (``epoch`` and ``step`` ints), empty cells None."""
    path = Path(path)
    if path.is_dir():
        path = path / SCALARS_FILE
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = []
        for cells in reader:
            if len(cells) != len(header):  # a torn last row
                continue
            row: dict[str, Any] = {}
            for col, cell in zip(header, cells, strict=True):
                if col == "split":
                    row[col] = cell
                elif cell == "":
                    row[col] = None
                elif col in ("epoch", "step"):
                    row[col] = int(cell)
                else:
                    row[col] = float(cell)
            rows.append(row)
    return header, rows


# ----------------------------------------------------------------------------------------------
# helpers


def _device(trainer: Any) -> Any:
    runtime = getattr(trainer, "runtime", None)
    return getattr(runtime, "device", None)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, int | float) else value


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float | int | str | bool) or obj is None:
        return _number(obj)
    if hasattr(obj, "item"):
        return _number(obj)
    return str(obj)


def _event_epoch(line: str) -> int:
    """The epoch an ``on_epoch_end`` / ``on_early_stop`` line logs (0 for other events: they are kept)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return 0
    if not isinstance(record, dict) or record.get("event") not in ("on_epoch_end", "on_early_stop"):
        return 0
    return record.get("epoch") if isinstance(record.get("epoch"), int) else 0


def _row_epoch(line: str) -> int:
    """The epoch of a ``scalars.csv`` row (0 for the header or a line that is not a row)."""
    first = line.split(",", 1)[0]
    return int(first) if first.isdigit() else 0


def _keep_lines(path: Path, keep: Any) -> None:
    """Rewrite ``path`` (atomically) without the lines ``keep`` refuses; untouched when it keeps them all."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if keep(line.rstrip("\n"))]
    if len(kept) != len(lines):
        atomic_write_text(path, "".join(kept))


def _open_append(path: Path, keep: Any = None) -> io.TextIOWrapper:
    """Open ``path`` for appending text. A last line torn by a crash (no newline at the end) is cut off
    first, so that the file stays whole lines; then the lines ``keep`` refuses are dropped."""
    _cut_torn_line(path)
    if keep is not None and path.exists():
        _keep_lines(path, keep)
    return open(path, "a", encoding="utf-8", newline="")  # kept open for the run


def _cut_torn_line(path: Path) -> None:
    if path.exists() and path.stat().st_size:
        with open(path, "r+b") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(end - 1)
            if f.read(1) != b"\n":
                cut, pos = 0, end
                while pos > 0:  # back to the last newline, a block at a time
                    start = max(0, pos - 65536)
                    f.seek(start)
                    found = f.read(pos - start).rfind(b"\n")
                    if found >= 0:
                        cut = start + found + 1
                        break
                    pos = start
                f.truncate(cut)


def _read_header(path: Path) -> list[str] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, encoding="utf-8", newline="") as f:
        header = next(csv.reader(f), None)
    return header or None
