"""The MLflow pyfunc model of a specml model: ``mlflow.pyfunc.load_model(uri).predict(df)`` scores with specml.

The logged model carries a minimal specml home (the model directory and its run's specs) as the artifact
``specml_home``; loading repoints its ``run.json`` there. Imports MLflow: import it only when logging.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.pyfunc import PythonModel


def _repoint(home: Path) -> None:
    """Make each model's run.json point inside this home (it was written relative to it)."""
    for run_json in (home / "models").glob("*/run.json"):
        info = json.loads(run_json.read_text(encoding="utf-8"))
        run = info.get("run_dir")
        if isinstance(run, str) and not Path(run).is_absolute():
            run_json.write_text(json.dumps({**info, "run_dir": str(home / "runs" / run)}), encoding="utf-8")


class SpecmlPyfunc(PythonModel):
    """An MLflow pyfunc model whose ``predict`` is specml's: a DataFrame of the feature columns in, the
    columns ``specml predict`` writes out (through :mod:`specml.serve.models` and :mod:`specml.predictions`)."""

    def load_context(self, context) -> None:
        from specml.serve.models import load_served

        home = Path(context.artifacts["specml_home"])
        _repoint(home)
        (name,) = [p.name for p in (home / "models").iterdir() if p.is_dir()]
        self._served = load_served(name, home)

    def predict(self, context, model_input, params=None):
        import pyarrow as pa

        from specml.predictions import prediction_table, threshold_of

        s = self._served
        table = pa.Table.from_pandas(model_input, preserve_index=False)
        keep = [c for c in table.column_names if c not in s.features]
        data = s.check_table(table, keep)
        cut = threshold_of(s.metadata, (params or {}).get("threshold"))
        return prediction_table(data, keep, s.columns_of(s.scores(data), cut)).to_pandas()
