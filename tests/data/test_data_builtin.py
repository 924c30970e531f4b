"""Bundled datasets: real rows, readable column names, the right targets; they land in the workspace."""

from __future__ import annotations

import re
from collections import Counter

import pyarrow.csv as pacsv
import pytest

from specml.data import builtin
from testkit import ROOT

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SHAPES = {  # name -> (rows, columns, target columns)
    "pima": (768, 9, ["outcome"]),
    "pima_categorical": (768, 13, ["outcome"]),
    "wine": (178, 14, ["class"]),
    "digits": (1797, 65, ["digit"]),
    "diabetes": (442, 11, ["progression"]),
    "linnerud": (20, 6, ["Weight", "Waist", "Pulse"]),
    "breast_cancer": (569, 31, ["diagnosis"]),
    "iris": (150, 5, ["species"]),
}


def test_every_dataset_is_listed_and_described():
    assert builtin.names() == list(SHAPES)
    for info in builtin.DATASETS.values():
        assert info.summary and info.task


@pytest.mark.parametrize("name", list(SHAPES))
def test_dataset_shape_names_and_no_nulls(name):
    table = builtin.load(name)
    rows, cols, targets = SHAPES[name]
    assert (table.num_rows, table.num_columns) == (rows, cols)
    for t in targets:
        assert t in table.column_names
    assert all(IDENT.match(c) for c in table.column_names), table.column_names
    assert all(table.column(c).null_count == 0 for c in table.column_names)


def test_wine_digits_iris_breast_cancer_targets():
    assert Counter(builtin.load("wine").column("class").to_pylist()) == {0: 59, 1: 71, 2: 48}
    digits = builtin.load("digits")
    assert digits.column_names[:3] == ["p0", "p1", "p2"] and digits.column_names[63] == "p63"
    assert set(digits.column("digit").to_pylist()) == set(range(10))
    assert max(digits.column("p36").to_pylist()) == 16
    assert Counter(builtin.load("iris").column("species").to_pylist()) == {"setosa": 50, "versicolor": 50,
                                                                          "virginica": 50}
    assert Counter(builtin.load("breast_cancer").column("diagnosis").to_pylist()) == {"benign": 357,
                                                                                      "malignant": 212}
    assert "od280_od315_of_diluted_wines" in builtin.load("wine").column_names


def test_diabetes_is_in_raw_units():
    table = builtin.load("diabetes")
    assert table.column_names == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"]
    ages = table.column("age").to_pylist()
    assert 19 <= min(ages) and max(ages) <= 79  # years, not scikit-learn's scaled values
    assert set(table.column("sex").to_pylist()) == {1.0, 2.0}
    assert 25 <= min(table.column("progression").to_pylist()) and max(table.column("progression").to_pylist()) <= 346


def test_linnerud_features_and_targets():
    table = builtin.load("linnerud")
    assert table.column_names == ["Chins", "Situps", "Jumps", "Weight", "Waist", "Pulse"]
    assert table.slice(0, 1).to_pylist()[0] == {"Chins": 5.0, "Situps": 162.0, "Jumps": 60.0, "Weight": 191.0,
                                                "Waist": 36.0, "Pulse": 50.0}


def test_pima_is_the_bundled_csv():
    csv = pacsv.read_csv(ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv")
    assert builtin.load("pima").equals(csv)


def test_pima_categorical_bands_follow_the_values():
    table = builtin.load("pima_categorical")
    pima = builtin.load("pima")
    for col in pima.column_names:  # the real rows, unchanged
        assert table.column(col).equals(pima.column(col))
    assert table.column_names[-1] == "outcome"
    for row in table.to_pylist():
        age, bmi, glucose, preg = row["age"], row["bmi"], row["glucose"], row["pregnancies"]
        assert row["age_band"] == ("21-29" if age < 30 else "30-39" if age < 40 else "40-49" if age < 50
                                   else "50-59" if age < 60 else "60+")
        assert row["bmi_class"] == ("unknown" if bmi == 0 else "underweight" if bmi < 18.5 else "normal" if bmi < 25
                                    else "overweight" if bmi < 30 else "obese_1" if bmi < 35 else "obese_2")
        assert row["glucose_class"] == ("unknown" if glucose == 0 else "normal" if glucose < 140
                                        else "impaired" if glucose < 200 else "high")
        assert row["pregnancies_band"] == ("0" if preg == 0 else "1-2" if preg < 3 else "3-5" if preg < 6 else "6+")
    assert Counter(table.column("bmi_class").to_pylist())["unknown"] == 11


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match="unknown dataset 'wnie' \\(did you mean 'wine'\\?\\)"):
        builtin.load("wnie")


def test_column_name():
    assert builtin.column_name("sepal length (cm)") == "sepal_length_cm"
    assert builtin.column_name("od280/od315_of_diluted_wines") == "od280_od315_of_diluted_wines"


def test_datasets_land_in_the_workspace(tmp_path):
    from specml.data.workspace import Workspace

    with Workspace(tmp_path / "ws.duckdb") as ws:
        for name in ("pima_categorical", "digits", "iris"):
            ws.write_table(name, builtin.load(name))
        assert ws.columns("pima_categorical")["age_band"] == "VARCHAR"
        assert ws.row_count("digits") == 1797
        assert ws.sql("SELECT count(DISTINCT species) AS n FROM iris").column("n")[0].as_py() == 3
