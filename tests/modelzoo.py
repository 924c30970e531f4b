"""Tiny trained models for the export, serve and MLflow tests (a few epochs on Pima; seconds each).

``pima_zoo(home)`` adds table ``pima_x`` to a home holding ``pima`` (tests/conftest.py ``pima_home``):
Pima plus ``age_band`` (text: young / middle / senior) and ``glucose_band`` (text: low / mid / high).
Each ``train_*`` function trains one model under a name and returns the name.
"""

from __future__ import annotations

from pathlib import Path

from testkit import EXAMPLES

NUMERIC = ["pregnancies", "glucose", "blood_pressure", "skin_thickness", "insulin", "bmi", "diabetes_pedigree", "age"]
TABLE = "pima_x"

TRAINER = ("optimizer: {type: torch.optim.Adam, lr: 0.01}\n"
           "config: {epochs: 3, batch_size: 64, seed: 3, verbose: false, make_plots: false, tensorboard: false}\n")

BINARY_CATEGORICAL = """
inputs:
  x: {dtype: float32, shape: [null, 8], columns: [%s], normalize: standard}
  age_band: {dtype: int64, shape: [null], columns: [age_band], categorical: true, embedding_dim: 3}
graph:
  - {name: joined, type: torch.cat, params: {dim: 1}, inputs: [x, age_band]}
  - {name: h, type: torch.nn.Linear, params: {in_features: 11, out_features: 16}, inputs: [joined]}
  - {name: a, type: torch.nn.ReLU, inputs: [h]}
  - {name: out, type: torch.nn.Linear, params: {in_features: 16, out_features: 1}, inputs: [a]}
outputs: {logits: out}
loss: {type: torch.nn.BCEWithLogitsLoss, inputs: {input: logits, target: outcome}}
""" % ", ".join(NUMERIC)

MULTICLASS = """
inputs:
  x: {dtype: float32, shape: [null, 7], columns: [%s], normalize: standard}
graph:
  - {name: h, type: torch.nn.Linear, params: {in_features: 7, out_features: 16}, inputs: [x]}
  - {name: a, type: torch.nn.ReLU, inputs: [h]}
  - {name: out, type: torch.nn.Linear, params: {in_features: 16, out_features: 3}, inputs: [a]}
outputs: {logits: out}
loss: {type: torch.nn.CrossEntropyLoss, inputs: {input: logits, target: glucose_band}}
""" % ", ".join(c for c in NUMERIC if c != "glucose")

LIGHTGBM = """
estimator:
  type: lightgbm.LGBMClassifier
  params: {n_estimators: 20, num_leaves: 7, n_jobs: 1}
target: outcome
features: [%s, age_band]
verbose: 0
""" % ", ".join(c for c in NUMERIC if c != "age")


def pima_zoo(home: Path) -> None:
    from specml.data.workspace import Workspace

    with Workspace(Path(home) / "workspace.duckdb") as ws:
        ws.write_table(TABLE, ws.sql(
            "select *, case when age < 30 then 'young' when age < 45 then 'middle' else 'senior' end as age_band, "
            "case when glucose < 100 then 'low' when glucose < 140 then 'mid' else 'high' end as glucose_band "
            "from pima"))


def _files(tmp: Path, model_text: str) -> tuple[Path, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "model.yaml").write_text(model_text, encoding="utf-8")
    (tmp / "trainer.yaml").write_text(TRAINER, encoding="utf-8")
    return tmp / "model.yaml", tmp / "trainer.yaml"


def train_network(home: Path, name: str, model_text: str | None = None, model_file: Path | None = None) -> str:
    from specml import api

    spec, trainer = _files(Path(home) / "specs" / name, model_text or Path(model_file).read_text(encoding="utf-8"))
    api.train(spec, trainer, table=TABLE, name=name, home=home, workspace=Path(home) / "workspace.duckdb",
              verbose=False, track=False)
    return name


def train_binary(home: Path) -> str:
    return train_network(home, "bin_cat", BINARY_CATEGORICAL)


def train_multiclass(home: Path) -> str:
    return train_network(home, "multi", MULTICLASS)


def train_multitask(home: Path) -> str:
    return train_network(home, "mmoe", model_file=EXAMPLES / "mmoe_two_tasks" / "model.yaml")


def train_lightgbm(home: Path) -> str:
    from specml.classical.train import train_estimator

    spec = Path(home) / "specs" / "lgbm.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(LIGHTGBM, encoding="utf-8")
    train_estimator(spec, table=TABLE, name="lgbm", home=home, workspace=Path(home) / "workspace.duckdb",
                    verbose=False)
    return "lgbm"


def predicted(home: Path, name: str, table: str = TABLE):
    """``specml predict``'s table for ``name`` on ``table`` (the Python verb behind it)."""
    from specml import api

    return api.predict(name, table, home=home, workspace=Path(home) / "workspace.duckdb")


def columns_of(home: Path, table: str = TABLE) -> dict[str, list]:
    from specml.data.workspace import Workspace

    with Workspace(Path(home) / "workspace.duckdb", read_only=True) as ws:
        return ws.read_columns(table, list(ws.columns(table))).to_pydict()
