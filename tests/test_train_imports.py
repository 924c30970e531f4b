"""What a training imports: nothing it does not need (issue 19). A fresh process trains the Pima MLP.

pandas is installed here (MLflow's pyfunc needs it), and pyarrow imports it (about 0.4 s) on its first
``to_numpy`` or ``pa.array(ndarray)``: a training reads its columns through :mod:`specml.data.arrays`
instead, so pandas is never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import duckdb, torch
torch.set_num_threads(1)
from specml import api
ws, home, model, trainer, csv = sys.argv[1:6]
con = duckdb.connect(ws)
con.execute(f"create table pima as select * from read_csv_auto('{csv}')")
con.close()
api.train(model, trainer, table="pima", name="m", workspace=ws, home=home, verbose=False)
print(json.dumps({m: m in sys.modules for m in ("sklearn", "sklearn.metrics", "sklearn.model_selection",
                                                "pandas", "tensorboard", "torch.utils.tensorboard")}))
"""


@pytest.mark.slow
def test_a_training_imports_neither_scikit_learn_nor_pandas_nor_tensorboard(tmp_path):
    trainer = tmp_path / "trainer.yaml"
    spec = yaml.safe_load((ROOT / "examples" / "pima_mlp" / "trainer.yaml").read_text(encoding="utf-8"))
    spec["config"].update(epochs=2, tensorboard=False)  # TensorBoard files are asked for by default
    trainer.write_text(yaml.safe_dump(spec), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ws.duckdb"), str(tmp_path / "home"),
                             str(ROOT / "examples" / "pima_mlp" / "model.yaml"), str(trainer),
                             str(ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv")],
                            capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert imported["sklearn"] is False, imported  # the split and the binary AUC are numpy
    assert imported["pandas"] is False, imported
    assert imported["torch.utils.tensorboard"] is False, imported
