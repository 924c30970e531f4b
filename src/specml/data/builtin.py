"""Real datasets that load offline, as Arrow tables with readable column names.

scikit-learn's bundled data (wine, digits, diabetes, linnerud, breast_cancer, iris: files inside the
scikit-learn wheel, no download) and the Pima Indians Diabetes CSV bundled with specml
(``specml/sample_data/pima_diabetes.csv``), plus ``pima_categorical``: the same 768 rows with
categorical bands derived from their own values (for models that embed categories).

``load(name)`` returns a ``pyarrow.Table``; ``DATASETS`` lists the names with a line each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str
    target: str
    summary: str


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("pima", "binary", "outcome",
            "Pima Indians Diabetes: 768 rows, 8 clinical measurements, outcome 0/1 (268 positive)"),
    Dataset("pima_categorical", "binary", "outcome",
            "Pima plus categorical bands of its own values: age_band, bmi_class, pregnancies_band, glucose_class"),
    Dataset("wine", "multiclass", "class", "Wine recognition: 178 rows, 13 chemical measurements, class 0/1/2"),
    Dataset("digits", "multiclass", "digit", "Handwritten digits: 1,797 rows, 8x8 pixels p0..p63 (0..16), digit 0..9"),
    Dataset("diabetes", "regression", "progression",
            "Diabetes progression: 442 rows, age, sex, bmi, bp, s1..s6 (raw units), progression one year later"),
    Dataset("linnerud", "multi-output regression", "Weight,Waist,Pulse",
            "Linnerud: 20 rows, exercises Chins/Situps/Jumps, physiological targets Weight/Waist/Pulse"),
    Dataset("breast_cancer", "binary", "diagnosis",
            "Breast cancer Wisconsin: 569 rows, 30 cell-nucleus features, diagnosis benign/malignant"),
    Dataset("iris", "multiclass", "species", "Iris: 150 rows, 4 measurements in cm, species setosa/versicolor/virginica"),
)}


def names() -> list[str]:
    return list(DATASETS)


def column_name(text: str) -> str:
    """A readable identifier: ``'sepal length (cm)'`` -> ``sepal_length_cm``, ``'od280/od315...'`` -> ``od280_od315...``."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def load(name: str) -> pa.Table:
    """The dataset ``name`` as an Arrow table; an unknown name is a ValueError with a "did you mean"."""
    if name not in DATASETS:
        from specml.spec.errors import suggestion

        hint = suggestion(name, DATASETS)
        raise ValueError(f"unknown dataset '{name}'" + (f" ({hint})" if hint else "")
                         + f"; bundled: {', '.join(DATASETS)}")
    return _LOADERS[name]()


# ----------------------------------------------------------------------------------------------


def _pima() -> pa.Table:
    import pyarrow.csv as pacsv

    with resources.as_file(resources.files("specml") / "sample_data" / "pima_diabetes.csv") as path:
        return pacsv.read_csv(path)


def _bands(values, edges: list[float], labels: list[str]):
    """``labels[i]`` for values in ``[edges[i-1], edges[i])`` (first: below edges[0]; last: from edges[-1])."""
    import numpy as np
    import pyarrow as pa

    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), np.asarray(values, dtype=np.float64), side="right")
    return pa.array(np.asarray(labels, dtype=object)[idx], pa.string())


def _pima_categorical() -> pa.Table:
    """Pima with bands a clinician would use. A recorded 0 for BMI or glucose means "not measured"."""
    import numpy as np
    import pyarrow as pa

    table = _pima()
    age = table.column("age").to_numpy()
    bmi = table.column("bmi").to_numpy()
    glucose = table.column("glucose").to_numpy()
    pregnancies = table.column("pregnancies").to_numpy()
    bmi_class = _bands(bmi, [18.5, 25, 30, 35], ["underweight", "normal", "overweight", "obese_1", "obese_2"])
    bmi_class = pa.array(np.where(bmi == 0, "unknown", np.asarray(bmi_class.to_pylist(), dtype=object)), pa.string())
    glucose_class = _bands(glucose, [140, 200], ["normal", "impaired", "high"])  # 2-h OGTT, WHO thresholds
    glucose_class = pa.array(np.where(glucose == 0, "unknown", np.asarray(glucose_class.to_pylist(), dtype=object)),
                             pa.string())
    table = table.add_column(table.num_columns - 1, "age_band",
                             _bands(age, [30, 40, 50, 60], ["21-29", "30-39", "40-49", "50-59", "60+"]))
    table = table.add_column(table.num_columns - 1, "bmi_class", bmi_class)
    table = table.add_column(table.num_columns - 1, "pregnancies_band",
                             _bands(pregnancies, [1, 3, 6], ["0", "1-2", "3-5", "6+"]))
    table = table.add_column(table.num_columns - 1, "glucose_class", glucose_class)
    return table


def _sklearn(loader, target: str, *, feature_names: list[str] | None = None, target_names=None,
             int_features: bool = False, **kwargs) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    bunch = loader(**kwargs)
    names = feature_names or [column_name(n) for n in bunch.feature_names]
    data = np.asarray(bunch.data)
    columns = {}
    for j, col in enumerate(names):
        values = data[:, j]
        columns[col] = pa.array(values.astype(np.int32) if int_features else values.astype(np.float64))
    y = np.asarray(bunch.target)
    if target_names is not None:
        columns[target] = pa.array(np.asarray(target_names, dtype=object)[y], pa.string())
    elif np.issubdtype(y.dtype, np.integer):
        columns[target] = pa.array(y.astype(np.int64))
    else:
        columns[target] = pa.array(y.astype(np.float64))
    return pa.table(columns)


def _wine() -> pa.Table:
    from sklearn.datasets import load_wine

    return _sklearn(load_wine, "class")


def _digits() -> pa.Table:
    from sklearn.datasets import load_digits

    return _sklearn(load_digits, "digit", feature_names=[f"p{i}" for i in range(64)], int_features=True)


def _diabetes() -> pa.Table:
    from sklearn.datasets import load_diabetes

    return _sklearn(load_diabetes, "progression", scaled=False)


def _breast_cancer() -> pa.Table:
    from sklearn.datasets import load_breast_cancer

    # sklearn's target: 0 = malignant, 1 = benign
    return _sklearn(load_breast_cancer, "diagnosis", target_names=["malignant", "benign"])


def _iris() -> pa.Table:
    from sklearn.datasets import load_iris

    return _sklearn(load_iris, "species", target_names=["setosa", "versicolor", "virginica"])


def _linnerud() -> pa.Table:
    import numpy as np
    import pyarrow as pa
    from sklearn.datasets import load_linnerud

    bunch = load_linnerud()
    columns = {name: pa.array(np.asarray(bunch.data)[:, j].astype(np.float64))
               for j, name in enumerate(bunch.feature_names)}
    columns.update({name: pa.array(np.asarray(bunch.target)[:, j].astype(np.float64))
                    for j, name in enumerate(bunch.target_names)})
    return pa.table(columns)


_LOADERS = {
    "pima": _pima,
    "pima_categorical": _pima_categorical,
    "wine": _wine,
    "digits": _digits,
    "diabetes": _diabetes,
    "linnerud": _linnerud,
    "breast_cancer": _breast_cancer,
    "iris": _iris,
}
assert set(_LOADERS) == set(DATASETS)

__all__ = ["DATASETS", "Dataset", "column_name", "load", "names"]
