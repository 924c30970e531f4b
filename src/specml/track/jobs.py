"""Background jobs: a specml command run as a separate process, tracked in the registry.

    job_id = start_background(["train", "--model-spec", "m.yaml", ...], name="m1")

starts ``python -m specml.track.jobs run JOB_ID -- <argv>`` in a new session (its own process
group), with stdout and stderr going to ``<home>/jobs/<id>/stdout.log``, and returns at once. That
small runner starts ``python -m specml <argv>``, marks the job running, waits, and records the exit
code: 0 -> ``completed``, anything else -> ``failed`` (a signal it was sent -> ``cancelled``). The
training process itself reports progress (epoch, best metric, heartbeat) through
:class:`JobReporter`, which the engine calls when ``SPECML_JOB_ID`` is set.

A job whose processes are gone without a recorded end (killed with SIGKILL, machine restarted) is
marked ``failed`` by :func:`refresh`, which ``specml jobs`` runs before showing anything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from specml.home import specml_home
from specml.track.process import process_alive, process_start_time  # noqa: F401 - re-exported
from specml.track.registry import Registry
from specml.track.store import RegistryError, now, parse_time
from specml.track.tables.jobs import Job

JOB_ENV = "SPECML_JOB_ID"
REGISTRY_ENV = "SPECML_JOB_REGISTRY"
WRAPPED_ENV = "SPECML_JOB_WRAPPED"
#: a queued job with no process recorded this long after creation never started
START_GRACE_S = 60.0


class JobError(RegistryError):
    """A job that cannot be cancelled (already finished) or started."""


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# ----------------------------------------------------------------------------------------------
# starting


def start_background(argv: list[str], name: str, home: str | Path | None = None,
                     total_epochs: int | None = None, *, registry: Registry | None = None,
                     cwd: str | Path | None = None, env: dict[str, str] | None = None) -> int:
    """Start ``specml <argv>`` as a background job; return its id at once.

    ``argv`` is the command without ``--background`` (e.g. ``["train", "--model-spec", ...]``).
    The job runs with ``SPECML_HOME`` set to ``home`` and in ``cwd`` (default: the current folder).
    """
    home = specml_home(home)
    reg = registry or Registry(home=home)
    job = reg.create_job(name, [str(a) for a in argv], total_epochs=total_epochs)
    log = Path(job.log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    child_env = {**(os.environ if env is None else env), "SPECML_HOME": str(home), JOB_ENV: str(job.job_id),
                 REGISTRY_ENV: str(reg.path), "PYTHONUNBUFFERED": "1"}
    # -P: the job's import path never holds the folder it was started from (a typer.py there does not run)
    command = [sys.executable, "-P", "-m", "specml.track.jobs", "run", "--registry", str(reg.path), str(job.job_id),
               "--", *job.argv]
    try:
        with open(log, "ab") as out:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=cwd, env=child_env, start_new_session=True)
    except OSError as err:
        reg.finish_job(job.job_id, "failed", error=f"could not start the job: {err}")
        raise JobError(f"could not start job {job.job_id}: {err}") from None
    reg.update_job(job.job_id, wrapper_pid=proc.pid, wrapper_started=process_start_time(proc.pid))
    return job.job_id


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function that makes the child receive SIGTERM when the runner dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)

    return preexec


def run_wrapped(job_id: int, argv: list[str], registry: Registry | None = None) -> int:
    """The job runner: run ``python -m specml <argv>``, record its pid and its end; return its exit code."""
    reg = registry or Registry()
    job = reg.get_job(job_id)
    caught: list[int] = []
    child: subprocess.Popen | None = None

    def on_signal(signum, _frame) -> None:
        caught.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    print(f"[specml job {job_id}] {now()}: specml {' '.join(argv)}", flush=True)
    if job.status != "queued":
        print(f"[specml job {job_id}] not started: the job is {job.status}", flush=True)
        return 1
    env = {**os.environ, JOB_ENV: str(job_id), WRAPPED_ENV: "1", REGISTRY_ENV: str(reg.path),
           "PYTHONUNBUFFERED": "1"}
    try:
        child = subprocess.Popen([sys.executable, "-P", "-m", "specml", *argv], stdin=subprocess.DEVNULL, env=env,
                                 preexec_fn=_die_with_parent())  # noqa: PLW1509 (no threads here)
    except OSError as err:
        reg.finish_job(job_id, "failed", exit_code=127, error=f"could not start: {err}")
        return 127
    started = reg.update_job(job_id, only_active=True, status="running", pid=child.pid,
                             pid_started=process_start_time(child.pid), started_at=now(), heartbeat_at=now())
    if not started or caught:  # cancelled between creation and start
        child.terminate()
    rc = child.wait()
    if rc == 0:
        status, error = "completed", None
    elif caught:
        status, error = "cancelled", f"stopped by {_signal_name(caught[0])}"
    elif rc < 0:
        status, error = "failed", f"the process was killed by {_signal_name(-rc)}"
    else:
        status, error = "failed", _last_error(job.log_path) or f"exit code {rc}"
    reg.finish_job(job_id, status, exit_code=rc, error=error)
    final = reg.get_job(job_id)
    print(f"[specml job {job_id}] {now()}: {final.status} (exit code {rc})", flush=True)
    return rc


def _last_error(log_path: str | None) -> str | None:
    if not log_path:
        return None
    for line in reversed(tail(log_path, 30)):
        text = line.strip()
        if text.lower().startswith("error") or text.startswith("Traceback") or "Error: " in text:
            return text[:500]
    return None


# ----------------------------------------------------------------------------------------------
# watching


def refresh(registry: Registry) -> list[int]:
    """Mark ``failed`` every queued/running job whose processes are gone without a recorded end."""
    died = []
    for job in registry.list_jobs(active=True):
        if process_alive(job.wrapper_pid, job.wrapper_started) or process_alive(job.pid, job.pid_started):
            continue
        if job.wrapper_pid is None and job.pid is None:
            created = parse_time(job.created_at)
            if created and (datetime.now(UTC) - created).total_seconds() < START_GRACE_S:
                continue  # being started right now
        latest = registry.get_job(job.job_id)  # it may have ended while we looked
        if latest.finished:
            continue
        if registry.finish_job(job.job_id, "failed",
                               error="the job's process died without recording an end (killed, or the machine "
                                     "restarted)"):
            died.append(job.job_id)
    return died


def cancel(job_id: int | str, registry: Registry | None = None, grace: float = 10.0) -> Job:
    """Cancel a queued or running job: SIGTERM to its process group, SIGKILL after ``grace`` seconds."""
    reg = registry or Registry()
    job = reg.get_job(job_id)
    if job.finished:
        raise JobError(f"job {job.job_id} already ended: {job.status}")
    if not reg.finish_job(job.job_id, "cancelled", error="cancelled by the user"):
        raise JobError(f"job {job.job_id} already ended: {reg.get_job(job.job_id).status}")
    job = reg.get_job(job.job_id)
    procs = [(job.wrapper_pid, job.wrapper_started, True), (job.pid, job.pid_started, False)]
    _signal_all(procs, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(process_alive(p, s) for p, s, _ in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_all(procs, signal.SIGKILL)
    return reg.get_job(job.job_id)


def _signal_all(procs, sig: int) -> None:
    for pid, started, leader in procs:
        if not process_alive(pid, started):
            continue
        try:
            if leader and os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def tail(path: str | Path, n: int = 20) -> list[str]:
    """The last ``n`` lines of a file (without line ends); [] when it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = pos = f.tell()
            data = b""
            while pos > 0 and data.count(b"\n") <= n:
                pos = max(0, pos - 65536)
                f.seek(pos)
                data = f.read(end - pos)
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-n:] if n > 0 else []


def follow(path: str | Path, done: Callable[[], bool], *, start: int = 0, poll: float = 0.25) -> Iterator[str]:
    """Lines of a growing file from byte ``start``, until ``done()`` is true and everything is read."""
    pos, pending = start, b""
    while True:
        finished = done()  # asked before reading, so nothing written before the end is missed
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        pos += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode("utf-8", errors="replace").rstrip("\r")
        if finished and not chunk:
            if pending:
                yield pending.decode("utf-8", errors="replace")
            return
        if not chunk:
            time.sleep(poll)


# ----------------------------------------------------------------------------------------------
# progress from inside the training process


class JobReporter:
    """Engine callback that writes a job's progress to the registry (status, epoch, best, heartbeat).

    Under the job runner (``SPECML_JOB_WRAPPED``) the runner records the end from the exit code and
    the reporter only adds progress and the error text; otherwise (``final=True``) the reporter also
    marks the job completed or failed. Registry errors never stop the training: they are warned once.
    """

    def __init__(self, job_id: int, registry: Registry | None = None, *, final: bool = True,
                 min_interval_s: float = 0.5) -> None:
        self.job_id = int(job_id)
        self.registry = registry or Registry()
        self.final = final
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._warned = False

    @classmethod
    def from_env(cls, registry: Registry | None = None) -> JobReporter | None:
        """The reporter for this process's job (``SPECML_JOB_ID``), or None when not run as a job."""
        job = os.environ.get(JOB_ENV)
        if not job:
            return None
        path = os.environ.get(REGISTRY_ENV)
        return cls(int(job), registry or Registry(path or None), final=os.environ.get(WRAPPED_ENV) != "1")

    def _safe(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as err:  # noqa: BLE001 (progress is worth less than the run)
            if not self._warned:
                self._warned = True
                warnings.warn(f"job {self.job_id}: could not record progress in {self.registry.path}: {err}",
                              stacklevel=3)

    def on_train_start(self, trainer, keys=None, num_epochs=None, **_: Any) -> None:
        pid = os.getpid()
        self._safe(lambda: self.registry.update_job(
            self.job_id, only_active=True, status="running", total_epochs=num_epochs, pid=pid,
            pid_started=process_start_time(pid), heartbeat_at=now()))
        self._safe(lambda: self.registry.update_job(self.job_id, only_active=True, started_at=now())
                   if self.registry.get_job(self.job_id).started_at is None else None)

    def on_epoch_end(self, trainer, epoch, logs=None, improved=None, **_: Any) -> None:
        if time.monotonic() - self._last < self.min_interval_s:
            return
        self._last = time.monotonic()
        self._safe(lambda: self._progress(trainer, epoch))

    def _progress(self, trainer, epoch: int | None) -> None:
        best = getattr(trainer, "best", None)
        self.registry.update_job(self.job_id, epoch=epoch, best_metric=getattr(trainer, "monitor", None),
                                 best_value=getattr(best, "value", None), heartbeat_at=now())

    def on_exception(self, trainer, error: BaseException, **_: Any) -> None:
        text = f"{type(error).__name__}: {error}".strip().splitlines()[0][:500]
        self._safe(lambda: self.registry.update_job(self.job_id, only_active=True, error=text))
        if self.final:
            status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
            self._safe(lambda: self.registry.finish_job(self.job_id, status))

    def on_train_end(self, trainer, history=None, best_epoch=None, best_value=None, **_: Any) -> None:
        epochs = len(history.get("train_loss", [])) if history else getattr(trainer, "epoch", None)
        self._safe(lambda: self._progress(trainer, epochs))
        if self.final:
            self._safe(lambda: self.registry.finish_job(self.job_id, "completed", exit_code=0))


# ----------------------------------------------------------------------------------------------


def main(args: list[str] | None = None) -> int:
    """``python -m specml.track.jobs run [--registry PATH] JOB_ID -- ARGV...`` (the job runner)."""
    args = list(sys.argv[1:] if args is None else args)
    if "--" not in args or not args or args[0] != "run":
        print("usage: python -m specml.track.jobs run [--registry PATH] JOB_ID -- ARGV...", file=sys.stderr)
        return 2
    split = args.index("--")
    head, argv = args[1:split], args[split + 1:]
    path = None
    if head[:1] == ["--registry"]:
        path, head = head[1], head[2:]
    return run_wrapped(int(head[0]), argv, Registry(path))


if __name__ == "__main__":
    sys.exit(main())
