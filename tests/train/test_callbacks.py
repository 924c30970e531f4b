"""Issue 18 / seed 001 §7: ``callbacks:`` in a trainer spec, the same objects as ``api.train(callbacks=...)``;
allow-listed names with "did you mean", params checked, user callbacks from the specml.callbacks group."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from specml import api
from specml.data.workspace import Workspace
from specml.spec import SpecError, load_trainer_spec
from specml.train.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, build_callbacks

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
MODEL = ROOT / "examples" / "pima_mlp" / "model.yaml"
BASE = "optimizer: {type: torch.optim.Adam, lr: 0.01}\nconfig: {epochs: 6, batch_size: 64, seed: 3}\n"


@pytest.fixture()
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    with Workspace(tmp_path / "ws.duckdb") as ws:
        ws.load(PIMA, "pima")
        yield ws


def trainer_file(tmp: Path, callbacks: str, name: str = "trainer.yaml") -> Path:
    path = tmp / name
    path.write_text(BASE + "callbacks:\n" + textwrap.indent(textwrap.dedent(callbacks), "  "), encoding="utf-8")
    return path


def issue_of(tmp: Path, callbacks: str):
    with pytest.raises(SpecError) as info:
        load_trainer_spec(trainer_file(tmp, callbacks))
    return info.value.issues[0]


def test_names_and_params_are_checked_with_did_you_mean(tmp_path):
    issue = issue_of(tmp_path, "- type: specml.callbacks.EarlyStoping\n  params: {patience: 2}\n")
    assert issue.path == "callbacks[0]" and "did you mean 'specml.callbacks.EarlyStopping'" in issue.message
    issue = issue_of(tmp_path, "- type: specml.callbacks.EarlyStopping\n  params: {patienc: 2}\n")
    assert "no parameter 'patienc'" in issue.message and "did you mean 'patience'" in issue.message
    issue = issue_of(tmp_path, "- type: specml.callbacks.EarlyStopping\n")
    assert "needs params.patience" in issue.message
    issue = issue_of(tmp_path, "- type: os.system\n")
    assert "unknown callback 'os.system'" in issue.message
    # seed 001 §7 writes arc.callbacks.<Name>
    spec = load_trainer_spec(trainer_file(tmp_path, "- type: arc.callbacks.ModelCheckpoint\n"
                                                    "  params: {monitor: val_accuracy}\n"))
    (cb,) = build_callbacks(spec.callbacks)
    assert isinstance(cb, ModelCheckpoint) and cb.monitor == "val_accuracy" and cb.mode == "max"


def test_spec_callbacks_do_what_the_python_api_does(ws, tmp_path):
    spec = trainer_file(tmp_path, """\
        - type: specml.callbacks.EarlyStopping
          params: {patience: 1, min_delta: 100.0}
        - type: specml.callbacks.ModelCheckpoint
          params: {monitor: val_auc}
        - type: specml.callbacks.LearningRateMonitor
        """)
    from_spec = api.train(MODEL, spec, table="pima", name="cb_spec", workspace=ws, verbose=False)
    plain = tmp_path / "plain.yaml"
    plain.write_text(BASE, encoding="utf-8")
    from_python = api.train(MODEL, plain, table="pima", name="cb_py", workspace=ws, verbose=False,
                            callbacks=[EarlyStopping(patience=1, min_delta=100.0), ModelCheckpoint(monitor="val_auc"),
                                       LearningRateMonitor()])
    # min_delta 100: nothing improves after epoch 1, so both stop after epoch 2 (of 6)
    for result in (from_spec, from_python):
        assert len(result.history["train_loss"]) == 2
        assert result.history["lr_0"] == result.history["lr"]
        assert (result.run_dir / "checkpoints" / "best-val_auc.safetensors").is_file()
        assert api.show_model(result.name)["epochs"]["stopped_early"] is True
    assert from_spec.history["train_loss"] == from_python.history["train_loss"]


def test_a_monitor_the_run_does_not_report_is_refused(ws, tmp_path):
    from specml.train.errors import TrainingError

    spec = trainer_file(tmp_path, "- type: specml.callbacks.ModelCheckpoint\n  params: {monitor: val_aucc}\n")
    with pytest.raises(TrainingError, match="ModelCheckpoint watches 'val_aucc'.*did you mean 'val_auc'"):
        api.train(MODEL, spec, table="pima", name="cb_bad", workspace=ws, verbose=False)


PLUGIN = '''
class CountEpochs:
    def __init__(self, every: int = 1):
        self.every, self.seen = every, []

    def on_epoch_end(self, trainer, epoch, logs, **_):
        if epoch % self.every == 0:
            self.seen.append(epoch)
            logs["counted"] = float(len(self.seen))
'''


@pytest.fixture
def plugin(tmp_path):
    site = tmp_path / "cb_site"
    (site / "acme_callbacks_xyz").mkdir(parents=True)
    (site / "acme_callbacks_xyz" / "__init__.py").write_text(PLUGIN)
    dist = site / "acme_callbacks_xyz-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-callbacks-xyz\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[specml.callbacks]\nacme.CountEpochs = acme_callbacks_xyz:CountEpochs\n")
    (dist / "RECORD").write_text("")
    sys.path.insert(0, str(site))
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("acme_callbacks_xyz", None)


def test_a_user_callback_registered_as_a_plugin(plugin, ws, tmp_path):
    spec = trainer_file(tmp_path, "- type: acme.CountEpochs\n  params: {every: 2}\n")
    (cb,) = build_callbacks(load_trainer_spec(spec).callbacks)
    assert type(cb).__name__ == "CountEpochs" and cb.every == 2
    spec = trainer_file(tmp_path, "- type: acme.CountEpochs\n  params: {every: 2}\n", "count.yaml")
    issue = issue_of(tmp_path, "- type: acme.CountEpoch\n")
    assert "did you mean 'acme.CountEpochs'" in issue.message
    from specml.train.errors import TrainingError

    with pytest.raises(TrainingError, match=r"callbacks\[0\] \(acme.CountEpochs\).*evry"):
        build_callbacks(load_trainer_spec(trainer_file(tmp_path, "- type: acme.CountEpochs\n"
                                                                 "  params: {evry: 2}\n")).callbacks)
    result = api.train(MODEL, spec, table="pima", name="cb_plugin", workspace=ws, verbose=False)
    assert len(result.history["train_loss"]) == 6
