"""TensorBoard: a training callback that writes event files, and the real TensorBoard server.

:class:`TensorBoardLogger` (a duck-typed :class:`specml.train.engine.Trainer` callback, rank 0 only)
writes, with ``torch.utils.tensorboard.SummaryWriter``:

* scalars at ``step = epoch``: ``train/loss``, ``val/loss``, ``train/<metric>``, ``val/<metric>``,
  ``lr`` and ``epoch_time_s``;
* the model graph once, at train start, traced on ``model.example_inputs()`` (spec-built models have
  it; other models are skipped). Tracing runs in eval mode under a forked RNG, so it changes neither
  the weights, the running statistics nor the random stream of the run; a failure is a warning;
* every ``histogram_every`` epochs (0: never), at the end of the epoch: ``weights/<param>`` and
  ``grads/<param>``. The engine frees gradients after each optimizer step (``set_to_none``), so in
  those epochs only, a post-accumulate-grad hook on each parameter keeps a reference to its latest
  gradient (no copy, no host read): the histogram shows the gradient of the epoch's last optimizer
  step as the optimizer used it (after unscaling and clipping). Other epochs carry no hooks at all.

:func:`launch` starts ``tensorboard`` as a subprocess on 127.0.0.1 and waits until it answers HTTP.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

SPLITS = ("train", "val")


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a log key: ``train_loss`` -> ``train/loss``, ``val_auc`` -> ``val/auc``, ``lr`` -> ``lr``."""
    split, _, name = key.partition("_")
    return f"{split}/{name}" if split in SPLITS and name else key


class TensorBoardLogger:
    """Write TensorBoard event files for one run into ``log_dir``."""

    def __init__(self, log_dir: str | Path, histogram_every: int = 0, log_graph: bool = True) -> None:
        if histogram_every < 0:
            raise ValueError(f"histogram_every must be 0 (off) or a positive number of epochs, got {histogram_every}")
        self.log_dir = Path(log_dir)
        self.histogram_every = histogram_every
        self.log_graph = log_graph
        self.writer = None
        self._hooks: list[Any] = []
        self._grads: dict[str, Any] = {}

    # -- callback hooks -----------------------------------------------------------------------------

    def on_train_start(self, trainer: Any, keys: list[str], num_epochs: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        if self.log_graph:
            self._add_graph(trainer)
        self.writer.flush()

    def on_epoch_start(self, trainer: Any, epoch: int, num_epochs: int, batches: int | None) -> None:
        if self._histogram_epoch(epoch):
            self._attach_grad_hooks(trainer.model)

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any], improved: bool) -> None:
        if self.writer is None:
            return
        for key, value in logs.items():
            value = value.item() if hasattr(value, "item") else value
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(scalar_tag(key), float(value), epoch)
        if self._histogram_epoch(epoch):
            self._add_histograms(trainer.model, epoch)
        self.writer.flush()

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self.close()

    def on_train_end(self, trainer: Any, history: dict, best_epoch: int | None, best_value: float | None) -> None:
        self.close()

    def close(self) -> None:
        self._detach_grad_hooks()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()
            self.writer = None

    # -- graph --------------------------------------------------------------------------------------

    def _add_graph(self, trainer: Any) -> None:
        model = trainer.model
        example = getattr(model, "example_inputs", None)
        if not callable(example):
            return
        import torch

        device = trainer.runtime.device
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings: data-dependent control flow, ...
                inputs = example()
                if isinstance(inputs, dict):  # spec-built models take their inputs by name
                    names, args = list(inputs), tuple(inputs.values())
                else:
                    names, args = None, tuple(inputs) if isinstance(inputs, list | tuple) else (inputs,)
                args = tuple(a.to(device) for a in args)
                self.writer.add_graph(_traceable(model, names), args, use_strict_trace=False)
        except Exception as exc:  # noqa: BLE001 - a graph is a nicety: it never stops a run
            first = (str(exc).strip().splitlines() or [""])[0][:200]  # tracer errors run to pages
            warnings.warn(f"TensorBoard: the model graph was not written ({type(exc).__name__}: {first})",
                          RuntimeWarning, stacklevel=2)

    # -- histograms ---------------------------------------------------------------------------------

    def _histogram_epoch(self, epoch: int) -> bool:
        return self.histogram_every > 0 and epoch % self.histogram_every == 0

    def _attach_grad_hooks(self, model: Any) -> None:
        self._detach_grad_hooks()
        self._grads = {}
        for name, param in model.named_parameters():
            if param.requires_grad:
                self._hooks.append(param.register_post_accumulate_grad_hook(self._keeper(name)))

    def _keeper(self, name: str):
        grads = self._grads

        def keep(param: Any) -> None:
            grads[name] = param.grad  # a reference: no copy, no sync

        return keep

    def _detach_grad_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _add_histograms(self, model: Any, epoch: int) -> None:
        self._detach_grad_hooks()
        for name, param in model.named_parameters():
            self.writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), epoch)
            grad = self._grads.get(name)
            if grad is not None:
                self.writer.add_histogram(f"grads/{name}", grad.detach().float().cpu(), epoch)
        self._grads = {}


def _traceable(model: Any, names: list[str] | None) -> Any:
    """Wrap ``model`` for tracing: positional tensors in (passed as keywords ``names``, or positionally when
    None), a tuple of outputs out (a dict output becomes its values)."""
    from torch import nn

    class Positional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            out = self.model(*args) if names is None else self.model(**dict(zip(names, args, strict=True)))
            return tuple(out.values()) if isinstance(out, dict) else out

    return Positional()


# ----------------------------------------------------------------------------------------------
# the server


def should_autolaunch() -> bool:
    """Launch TensorBoard on its own only for a person at a terminal: stdout a TTY and not in CI."""
    return sys.stdout.isatty() and not os.environ.get("CI")


def _free_port(host: str, port: int = 0) -> int:
    """``port`` if nothing listens on it (0: any free port); an error naming the port otherwise."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise RuntimeError(f"port {port} on {host} is in use (another TensorBoard?); pick another port, "
                               "or 0 for any free one") from None
        return s.getsockname()[1]


def launch(logdir: str | Path, port: int = 6006, host: str = "127.0.0.1", timeout: float = 60.0,
           reload_interval: float | None = None) -> tuple[subprocess.Popen, str]:
    """Start the TensorBoard server over ``logdir`` (each subdirectory a run); return ``(process, url)``
    once it answers HTTP. ``port=0`` picks a free port. The server's own output goes to a temporary file,
    shown in the error when it fails to start."""
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    port = _free_port(host, port)  # never "find" another server already listening there
    url = f"http://{host}:{port}/"
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(port), "--host", host]
    if reload_interval is not None:
        cmd += ["--reload_interval", str(reload_interval)]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the child, read on failure
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = _tail(log)
                raise RuntimeError(f"TensorBoard exited with code {process.returncode} before answering on {url}"
                                   + (f":\n{tail}" if tail else ""))
            if _answers(url + "data/environment"):
                log.close()  # the child keeps its own handle
                return process, url
            time.sleep(0.2)
    except BaseException:  # Ctrl-C while waiting: leave no server behind
        stop(process)
        raise
    stop(process)
    tail = _tail(log)
    raise RuntimeError(f"TensorBoard did not answer on {url} within {timeout:g} s" + (f":\n{tail}" if tail else ""))


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate a server :func:`launch` started (kill it if it does not exit in ``timeout`` s)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)


def _tail(log: Any, lines: int = 10) -> str:
    try:
        log.seek(0)
        return "\n".join(log.read().decode("utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
    finally:
        log.close()
