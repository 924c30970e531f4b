"""``specml jobs list | status | logs | cancel``: background jobs recorded in the registry."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from specml.cli.options import Group
from specml.cli.output import console, esc, fail, user_errors

jobs_app = typer.Typer(cls=Group, help="Background jobs (specml train ... --background).", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="Job id (see specml jobs list).", show_default=False)]
_STYLE = {"queued": "cyan", "running": "yellow", "completed": "green", "failed": "red", "cancelled": "magenta"}


def _registry():
    from specml.track.jobs import refresh
    from specml.track.registry import Registry

    reg = Registry()
    refresh(reg)
    return reg


def local_time(stamp: str | None) -> str:
    """An ISO UTC time as local ``YYYY-MM-DD HH:MM:SS``."""
    from specml.track.registry import parse_time

    t = parse_time(stamp)
    return "" if t is None else t.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def progress(job) -> str:
    if job.epoch is None and job.total_epochs is None:
        return ""
    return f"{job.epoch or 0}/{job.total_epochs if job.total_epochs is not None else '?'}"


def best(job) -> str:
    if job.best_metric is None or job.best_value is None:
        return ""
    return f"{job.best_metric} {job.best_value:.4f}"


def _status(job) -> str:
    return f"[{_STYLE.get(job.status, 'white')}]{esc(job.status)}[/]"


@jobs_app.command("list")
@user_errors
def jobs_list(
    limit: Annotated[int | None, typer.Option("--limit", help="Show the latest N jobs only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Jobs: id, name, status, progress (epoch/total), best metric, started, duration."""
    reg = _registry()
    jobs = reg.list_jobs(limit=limit)
    if as_json:
        typer.echo(json.dumps([{**j.to_dict(), "duration_s": j.duration_s} for j in jobs], indent=2))
        return
    if not jobs:
        console().print("no jobs yet (start one with: specml train ... --background)")
        return
    from rich.table import Table

    table = Table(title="jobs", title_justify="left")
    for col, justify in (("id", "right"), ("name", "left"), ("status", "left"), ("progress", "right"),
                         ("best", "left"), ("started", "left"), ("duration", "right")):
        table.add_column(col, justify=justify)
    for j in jobs:
        table.add_row(str(j.job_id), esc(j.name), _status(j), progress(j), best(j),
                      local_time(j.started_at or j.created_at), duration(j.duration_s))
    console().print(table)


@jobs_app.command("status")
@user_errors
def jobs_status(
    job_id: JobId,
    lines: Annotated[int, typer.Option("--lines", "-l", help="How many of the last log lines to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A job's details and the last lines of its log."""
    from specml.track.jobs import tail

    reg = _registry()
    job = reg.get_job(job_id)
    last = tail(job.log_path, lines) if job.log_path else []
    if as_json:
        typer.echo(json.dumps({**job.to_dict(), "duration_s": job.duration_s, "log_tail": last}, indent=2))
        return
    out = console()
    out.print(f"[bold]job {job.job_id}[/bold]  {esc(job.name)}  {_status(job)}")
    rows = [
        ("command", "specml " + " ".join(job.argv)),
        ("progress", f"epoch {progress(job)}" if progress(job) else ""),
        ("best", best(job)),
        ("created", local_time(job.created_at)),
        ("started", local_time(job.started_at)),
        ("ended", local_time(job.ended_at)),
        ("duration", duration(job.duration_s)),
        ("heartbeat", local_time(job.heartbeat_at)),
        ("pid", "" if job.pid is None else str(job.pid)),
        ("exit code", "" if job.exit_code is None else str(job.exit_code)),
        ("error", job.error or ""),
        ("run", job.run_id or ""),
        ("log", job.log_path or ""),
    ]
    for key, value in rows:
        if value:
            out.print(f"  {key + ':':<11}{esc(value)}")
    if last:
        out.print(f"  last {len(last)} log line(s):")
        for line in last:
            out.print("    " + esc(line))


@jobs_app.command("logs")
@user_errors
def jobs_logs(
    job_id: JobId,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="Keep printing new lines until the job ends.")] = False,
    lines: Annotated[int | None, typer.Option("--lines", "-l",
                                              help="Start with the last N lines (default: all).")] = None,
) -> None:
    """A job's output (stdout and stderr); --follow waits for new lines until the job ends."""
    import sys
    from pathlib import Path

    from specml.track.jobs import follow as follow_file
    from specml.track.jobs import tail

    reg = _registry()
    job = reg.get_job(job_id)
    path = Path(job.log_path or "")
    if not path.is_file() and (not follow or job.finished):
        fail(f"job {job.job_id} has no log at {path}")
    size = path.stat().st_size if path.is_file() else 0
    if lines is not None:
        for line in tail(path, lines):
            print(line)
    elif size:
        with open(path, "rb") as f:
            sys.stdout.write(f.read(size).decode("utf-8", errors="replace"))
    sys.stdout.flush()
    if not follow:
        return

    from specml.track.jobs import refresh

    def done() -> bool:
        refresh(reg)
        return reg.get_job(job.job_id).finished

    try:
        for line in follow_file(path, done, start=size):
            print(line, flush=True)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@jobs_app.command("cancel")
@user_errors
def jobs_cancel(
    job_id: JobId,
    grace: Annotated[float, typer.Option("--grace", help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
) -> None:
    """Stop a queued or running job (SIGTERM, then SIGKILL after --grace seconds); it ends as cancelled."""
    from specml.track.jobs import cancel

    reg = _registry()
    job = cancel(reg.get_job(job_id).job_id, reg, grace=grace)
    console().print(f"job {job.job_id} ({job.name}): {_status(job)}")


@jobs_app.command("resume")
@user_errors
def jobs_resume(job_id: JobId) -> None:
    """Start a stopped training job again from its last checkpoint, as a new background job
    (``specml train ... --resume``: refused when the specs or data changed)."""
    from specml.track.jobs import start_background

    reg = _registry()
    job = reg.get_job(job_id)
    if job.status in ("queued", "running"):
        fail(f"job {job.job_id} is {job.status}; cancel it first, or wait for it to end")
    if not job.argv or job.argv[0] != "train":
        fail(f"job {job.job_id} is not a training ({' '.join(job.argv[:2])}); only trainings resume")
    argv = [*job.argv, *([] if "--resume" in job.argv else ["--resume"])]
    new = start_background(argv, job.name, registry=reg)
    console().print(f"job {job.job_id} resumes as job {new}: specml jobs status {new}")


def register(app) -> None:
    """Add ``specml jobs`` to the app."""
    app.add_typer(jobs_app, name="jobs")
