"""The leaderboard as a user reads it: stored evaluations until the table or the model changes, ``--refresh``,
a multi-output model (its target is a list: once a crash), and long names shown whole."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import torch

from specml.data.workspace import Workspace
from testkit import EXAMPLES, ok

pytestmark = pytest.mark.slow  # trains a network and evaluates it four times (~20 s on a busy machine)

LONG = "linnerud_linear_with_a_name_longer_than_any_terminal_column_would_hold_in_a_table"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home with one multi-output network (two epochs) and table ``lin`` (scikit-learn's Linnerud)."""
    from sklearn.datasets import load_linnerud

    from specml import api

    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("home")
    data = load_linnerud()
    columns = {n: data.data[:, i] for i, n in enumerate(data.feature_names)}
    columns.update({n: data.target[:, i] for i, n in enumerate(data.target_names)})
    trainer = tmp_path_factory.mktemp("specs") / "trainer.yaml"
    trainer.write_text("model_ref: linnerud-linear\noptimizer: {type: torch.optim.Adam, lr: 0.01}\n"
                       "config: {epochs: 2, batch_size: 8, validation_split: 0.0, make_plots: false}\n")
    with Workspace(home / "workspace.duckdb") as ws:
        ws.write_table("lin", pa.table(columns))
        api.train(EXAMPLES / "linnerud_multioutput" / "model.yaml", trainer, table="lin", name=LONG, workspace=ws,
                  home=home, verbose=False, progress=False)
    return home


def board(cli, home, *more):
    return json.loads(ok(cli("leaderboard", "--table", "lin", "--json", *more, home=home)).stdout)


def test_a_multi_output_model_is_ranked_without_a_baseline(cli, home):
    result = board(cli, home, "--refresh")
    assert result["task"] == "regression" and result["target"] == ["Weight", "Waist", "Pulse"]
    assert [r["name"] for r in result["rows"]] == [LONG] and result["baseline"] is None
    assert result["rows"][0]["value"] > 0  # rmse


def test_stored_evaluations_are_read_until_the_table_changes_and_refresh_evaluates(cli, home):
    first = board(cli, home, "--refresh")["rows"][0]
    again = board(cli, home)["rows"][0]
    assert (first["stored"], again["stored"]) == (False, True) and again["value"] == first["value"]
    assert board(cli, home, "--refresh")["rows"][0]["stored"] is False
    with Workspace(home / "workspace.duckdb") as ws:
        ws.sql("DELETE FROM lin WHERE rowid = 0")
    changed = board(cli, home)["rows"][0]
    assert changed["stored"] is False and changed["rows"] == 19


def test_names_are_shown_whole_when_piped(cli, home):
    out = ok(cli("leaderboard", "--table", "lin", home=home, env={"COLUMNS": "60"})).stdout
    line = next(x for x in out.splitlines() if LONG in x)
    assert "neural" in line and "…" not in out
