"""specml.track.tensorboard and ``specml tensorboard``: event files from real runs, read back with
TensorBoard's own reader, and the real TensorBoard server (started, queried over HTTP, stopped)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from specml.track.tensorboard import TensorBoardLogger, launch, scalar_tag, stop
from specml.train.engine import TensorBatches, Trainer
from testkit import invoke, model_from, no_traceback

torch.set_num_threads(1)

SPEC = Path(__file__).resolve().parents[2] / "src/specml/sample_data/pima_mlp.model.yaml"


class GradRecordingAdam(torch.optim.Adam):
    """Adam that copies the gradients it steps with: the truth the gradient histograms are checked against."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.grads: list[list[torch.Tensor]] = []

    @torch.no_grad()
    def step(self, closure=None):
        self.grads.append([p.grad.clone() for g in self.param_groups for p in g["params"]])
        return super().step(closure)


def _spec_run(log_dir, epochs: int = 3, histogram_every: int = 0, log_graph: bool = True):
    """A spec-built binary model (it has example_inputs, so the graph is logged) trained on TensorBatches.
    ``log_dir`` None: the same run without the logger."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 8, generator=g)
    y = (x[:, 0] > 0).float()
    torch.manual_seed(0)
    model = model_from(SPEC)  # has dropout: the run consumes the global RNG
    train = TensorBatches({"patient_data": x[:32]}, y[:32], 8, shuffle=True, seed=1)
    val = TensorBatches({"patient_data": x[32:]}, y[32:], 16)
    callbacks = [] if log_dir is None else [TensorBoardLogger(log_dir, histogram_every, log_graph)]
    trainer = Trainer(model, train, val, device="cpu", task="binary", output_key="logits", verbose=False,
                      callbacks=callbacks)
    opt = GradRecordingAdam(model.parameters(), lr=1e-2)
    history = trainer.train(epochs, opt, nn.functional.binary_cross_entropy_with_logits)
    return trainer, history, opt


def _accumulator(path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


# ----------------------------------------------------------------------------------------------
# event files


def test_scalar_tags():
    assert [scalar_tag(k) for k in ("train_loss", "val_loss", "train_accuracy", "val_pr_auc", "lr")] == \
        ["train/loss", "val/loss", "train/accuracy", "val/pr_auc", "lr"]


def test_event_files_hold_scalars_graph_and_histograms(tmp_path):
    trainer, history, opt = _spec_run(tmp_path / "tb", histogram_every=2)
    acc = _accumulator(tmp_path / "tb")
    tags = acc.Tags()
    assert {"train/loss", "val/loss", "train/accuracy", "val/accuracy", "val/auc", "lr"} <= set(tags["scalars"])
    for tag, key in (("train/loss", "train_loss"), ("val/loss", "val_loss"), ("val/auc", "val_auc"), ("lr", "lr")):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2, 3]
        assert [e.value for e in events] == pytest.approx(history[key], rel=1e-6)

    assert tags["graph"] is True
    assert any("hidden1" in node.name for node in acc.Graph().node)

    names = [n for n, _ in trainer.model.named_parameters()]
    assert set(tags["histograms"]) == {f"{kind}/{n}" for kind in ("weights", "grads") for n in names}
    steps_per_epoch = 32 // 8
    last_step_of_epoch_2 = opt.grads[2 * steps_per_epoch - 1]
    for name, grad in zip(names, last_step_of_epoch_2, strict=True):
        assert [h.step for h in acc.Histograms(f"weights/{name}")] == [2]  # every 2 epochs: epoch 2 only
        histo = acc.Histograms(f"grads/{name}")[0].histogram_value
        assert histo.num == grad.numel()
        assert histo.sum == pytest.approx(grad.double().sum().item(), rel=1e-4, abs=1e-7)
        assert histo.min == pytest.approx(grad.min().item(), rel=1e-6, abs=1e-9)
        assert histo.max == pytest.approx(grad.max().item(), rel=1e-6, abs=1e-9)


def test_logging_does_not_change_the_run(tmp_path):
    """Graph tracing and gradient hooks leave the weights and the RNG stream (dropout) as they were."""
    logged, logged_history, _ = _spec_run(tmp_path / "tb", histogram_every=1)
    plain, plain_history, _ = _spec_run(None)
    assert logged_history["train_loss"] == plain_history["train_loss"]
    for (name, a), (_, b) in zip(logged.model.state_dict().items(), plain.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not any(p._post_accumulate_grad_hooks for p in logged.model.parameters())  # hooks removed


def test_a_model_without_example_inputs_gets_no_graph(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x = torch.randn(16, 3)
    trainer = Trainer(model, TensorBatches({"input": x}, x.sum(1), 8), None, device="cpu", verbose=False,
                      monitor="train_loss", callbacks=[TensorBoardLogger(tmp_path, histogram_every=1)])
    trainer.train(2, torch.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss())
    tags = _accumulator(tmp_path).Tags()
    assert tags["graph"] is False
    assert "train/loss" in tags["scalars"] and "val/loss" not in tags["scalars"]
    assert "grads/0.weight" in tags["histograms"]


def test_a_graph_that_cannot_be_traced_is_a_warning(tmp_path):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, input):
            return self.lin(input)

        def example_inputs(self):
            return {"wrong_name": torch.zeros(2, 2)}

    x = torch.randn(8, 2)
    trainer = Trainer(Broken(), TensorBatches({"input": x}, x[:, 0], 4), None, device="cpu", verbose=False,
                      monitor="train_loss", callbacks=[TensorBoardLogger(tmp_path)])
    with pytest.warns(RuntimeWarning, match="model graph was not written"):
        trainer.train(1, torch.optim.SGD(trainer.model.parameters(), lr=0.1), nn.MSELoss())
    assert "train/loss" in _accumulator(tmp_path).Tags()["scalars"]


# ----------------------------------------------------------------------------------------------
# the real server


@pytest.mark.slow
def test_the_server_serves_the_run_scalars(tmp_path):
    _, history, _ = _spec_run(tmp_path / "runs" / "pima" / "tb", epochs=3)
    process, url = launch(tmp_path / "runs", port=0, reload_interval=1)
    try:
        assert url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 60
        tags = {}
        while time.monotonic() < deadline:  # the server loads the logdir in the background
            tags = _get_json(url + "data/plugin/scalars/tags")
            if "train/loss" in tags.get("pima/tb", {}):
                break
            time.sleep(0.3)
        assert {"train/loss", "val/loss", "val/auc", "lr"} <= set(tags["pima/tb"])
        query = urllib.parse.urlencode({"run": "pima/tb", "tag": "train/loss"})
        points = _get_json(url + "data/plugin/scalars/scalars?" + query)  # [[wall_time, step, value], ...]
        assert [p[1] for p in points] == [1, 2, 3]
        assert [p[2] for p in points] == pytest.approx(history["train_loss"], rel=1e-6)
    finally:
        stop(process)
    assert process.poll() is not None
    assert not _answers(url + "data/environment")


def test_launch_refuses_a_port_in_use(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"port {port} on 127.0.0.1 is in use"):
            launch(tmp_path, port=port)


@pytest.mark.slow
def test_specml_tensorboard_command_prints_a_url_that_answers(tmp_path):
    env = {**os.environ, "SPECML_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "specml", "tensorboard", "--port", "0", "--foreground"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("TensorBoard at http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        url = line.split()[2]
        assert _answers(url + "data/environment")
        assert (tmp_path / "home" / "runs").is_dir()
        assert str(tmp_path / "home" / "runs") in _get_json(url + "data/environment")["data_location"]
    finally:
        proc.terminate()
        code = proc.wait(timeout=20)
    assert code == 0
    assert not _answers(url + "data/environment")  # terminating the command stopped the server too
    assert "Traceback" not in proc.stderr.read()


def test_specml_tensorboard_with_a_missing_logdir_is_an_error(tmp_path):
    done = invoke("tensorboard", "--logdir", tmp_path / "nope", home=tmp_path)
    assert done.returncode == 1
    assert "error:" in done.stderr and "nope" in done.stderr
    no_traceback(done)


def test_should_autolaunch_only_at_a_terminal_outside_ci():
    pexpect = pytest.importorskip("pexpect")
    code = "from specml.track.tensorboard import should_autolaunch; print('auto', should_autolaunch())"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    for extra, expected in (({}, "True"), ({"CI": "true"}, "False")):
        child = pexpect.spawn(sys.executable, ["-c", code], env={**env, **extra}, encoding="utf-8", timeout=60)
        child.expect(r"auto (True|False)")
        assert child.match.group(1) == expected, extra
        child.expect(pexpect.EOF)


@pytest.mark.slow
def test_ctrl_c_at_a_terminal_stops_the_command_and_the_server(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    env = {**os.environ, "SPECML_HOME": str(tmp_path)}
    child = pexpect.spawn(sys.executable, ["-m", "specml", "tensorboard", "--port", "0", "--foreground"], env=env,
                          encoding="utf-8", timeout=60, dimensions=(24, 200))
    child.expect(r"TensorBoard at (http://127\.0\.0\.1:\d+/)")
    url = child.match.group(1)
    assert _answers(url + "data/environment")
    child.sendcontrol("c")
    child.expect("stopped")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not _answers(url + "data/environment")


@pytest.mark.slow
def test_specml_tensorboard_stays_is_reused_and_stops(tmp_path):
    """The default server is detached: it outlives the command, the next command reuses it, a busy port
    moves it to the next free one (said so), and --stop ends it."""
    env = {**os.environ, "SPECML_HOME": str(tmp_path / "home")}

    def specml(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "specml", "tensorboard", *args], capture_output=True,
                              text=True, env=env, timeout=180, check=False)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        first = specml("--port", str(busy))
        try:
            assert first.returncode == 0, first.stderr
            assert f"port {busy} is busy; serving on" in first.stderr
            url = first.stdout.split("TensorBoard at ", 1)[1].split()[0]
            assert url != f"http://127.0.0.1:{busy}/" and "started" in first.stdout
            assert "specml tensorboard --stop" in first.stdout
            assert _answers(url + "data/environment")  # the command ended; the server stays
            again = specml("--port", str(busy))
            assert again.returncode == 0 and f"TensorBoard at {url} (already running" in again.stdout
        finally:
            stopped = specml("--stop")
        assert stopped.returncode == 0 and f"stopped TensorBoard at {url}" in stopped.stdout
        assert not _answers(url + "data/environment")
        assert "no TensorBoard was running" in specml("--stop").stdout


@pytest.mark.slow
def test_train_tensorboard_starts_a_detached_server_then_reuses_it(tmp_path, monkeypatch, capsys):
    """What ``specml train --tensorboard`` does before its first epoch: start a server that outlives the run (a
    new session, recorded in the home), and on the next run reuse it."""
    from specml.cli.track import tensorboard_for_training
    from specml.track import tbserver

    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    logdir = tmp_path / "home" / "runs"
    try:
        tensorboard_for_training(logdir, True, port=0)
        first = capsys.readouterr().out
        assert "(started;" in first and "keeps running after the run" in first and "specml tensorboard --stop" in first
        server = tbserver.running()
        assert server is not None and os.getsid(server.pid) != os.getsid(0)  # not in this process's session
        tensorboard_for_training(logdir, True, port=0)
        assert f"TensorBoard at {server.url} (already running;" in capsys.readouterr().out
        assert tensorboard_for_training(logdir, False) is None and capsys.readouterr().out == ""  # --no-tensorboard
    finally:
        stopped = tbserver.stop_recorded()
    assert stopped is not None and not _answers(stopped.url + "data/environment")


@pytest.mark.slow
def test_a_killed_train_leaves_no_orphan_tensorboard_the_recorded_one_is_reused_and_stopped(tmp_path):
    """Issue 15: `kill -9` of `train --tensorboard` left a TensorBoard nobody knew of on its port. The server is
    one per home now, recorded in <home>/tensorboard.json: the next command finds and reuses it, --stop ends it."""
    import signal

    from specml.track import tbserver

    home = tmp_path / "home"
    env = {**os.environ, "SPECML_HOME": str(home), "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    pima = Path(__file__).resolve().parents[2] / "src/specml/sample_data/pima_diabetes.csv"
    subprocess.run([sys.executable, "-m", "specml", "data", "load", str(pima), "--table", "pima"], env=env,
                   check=True, capture_output=True, timeout=120)
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text("optimizer: {type: torch.optim.Adam, lr: 0.001}\nconfig: {epochs: 100000, batch_size: 64}\n")
    proc = subprocess.Popen([sys.executable, "-m", "specml", "train", "-m", str(SPEC), "-T", str(trainer), "-t",
                             "pima", "-n", "doomed", "--tensorboard"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and tbserver.running(home) is None:
            assert proc.poll() is None, "the training ended before it could be killed"
            time.sleep(0.2)
        server = tbserver.running(home)
        assert server is not None
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    try:
        assert _answers(server.url + "data/environment")  # the server outlives the run, and the home knows it
        again = tbserver.ensure(home / "runs", home)
        assert again.reused and again.pid == server.pid
    finally:
        stopped = tbserver.stop_recorded(home)
    assert stopped is not None and stopped.pid == server.pid and not _answers(server.url + "data/environment")
