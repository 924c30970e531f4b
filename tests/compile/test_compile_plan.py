"""ML plans: the analysis of a table for a goal, stored in the registry and read back."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from specml.compile.errors import CompileError
from specml.compile.plan import estimate_seconds, list_plans, load_plan, make_plan, save_plan
from specml.data.workspace import Workspace
from testkit import PIMA


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = Workspace(tmp_path_factory.mktemp("plan") / "ws.duckdb")
    w.load(PIMA, "pima")
    w.sql("CREATE TABLE pima_leaky AS SELECT *, outcome * 1.0 AS outcome_score, NULL::DOUBLE AS empty_col, "
          "CASE WHEN rowid % 10 = 0 THEN NULL ELSE bmi END AS bmi_with_gaps FROM pima")
    w.sql("CREATE TABLE daily AS SELECT DATE '2024-01-01' + CAST(i AS INTEGER) AS day, i * 0.5 AS temp, "
          "100 + (i * 37) % 50 * 1.5 AS sales FROM range(120) t(i)")
    yield w
    w.close()


def test_plan_for_pima(ws, tmp_path):
    plan = make_plan("Build a binary classifier to predict diabetes", ws, "pima")
    assert plan.targets == ["outcome"] and plan.task == "binary"
    assert plan.balance["outcome"]["counts"] == {"0": 500, "1": 268}
    assert plan.balance["outcome"]["minority_to_majority"] == pytest.approx(268 / 500, abs=1e-4)
    assert plan.missing == {}
    assert plan.cardinality["outcome"] == 2 and plan.cardinality["pregnancies"] == 17
    assert plan.leakage == []
    assert plan.split["kind"] == "stratified" and "--stratify outcome" in plan.split["command"]
    assert plan.metric == "auc" and plan.architecture == "mlp"
    plr = 8 * 16 + 8 * 32 * 16 + 8 * 16  # PLR: frequencies, per-column linear weights and biases
    assert plan.estimate["parameters"] == plr + (128 * 128 + 128) * 2 + 128 + 1
    assert plan.estimate["seconds"] > 0
    assert plan.plan_id == ""  # not saved yet
    plan_id = save_plan(plan, tmp_path)
    assert plan_id == plan.plan_id == "plan-1"
    con = sqlite3.connect(tmp_path / "registry.sqlite")
    row = con.execute("SELECT id, instruction, table_name, created_at, plan FROM plans").fetchone()
    con.close()
    assert row[:4] == (1, plan.instruction, "pima", plan.created_at)
    assert json.loads(row[4])["plan_id"] == "plan-1"
    assert not (tmp_path / "plans").exists()
    assert list_plans(tmp_path) == [plan_id]
    back = load_plan(plan_id, tmp_path)
    assert back == plan
    assert load_plan("1", tmp_path) == plan and load_plan(" PLAN-1 ", tmp_path) == plan
    assert back.compiled_specs().model == plan.compiled["model"]
    assert save_plan(make_plan("predict outcome", ws, "pima"), tmp_path) == "plan-2"
    assert list_plans(tmp_path) == ["plan-1", "plan-2"]


def test_plan_reports_missing_values_and_leakage(ws):
    plan = make_plan("predict outcome", ws, "pima_leaky")
    assert plan.missing == {"empty_col": 768, "bmi_with_gaps": 77}
    suspects = {s["column"]: s["reason"] for s in plan.leakage}
    assert suspects["outcome_score"] == "identical to the target 'outcome'"
    used = [c for inp in plan.compiled["model"]["inputs"].values() for c in inp["columns"]]
    assert "outcome_score" not in used and "bmi_with_gaps" not in used and "empty_col" not in used


def test_time_column_gives_a_time_split_and_regression_metric(ws):
    plan = make_plan("forecast sales", ws, "daily")
    assert plan.task == "regression" and plan.metric == "rmse"
    assert plan.split["kind"] == "time" and plan.split["column"] == "day"
    assert "--time-column day" in plan.split["command"]
    assert "temp" in plan.compiled["features"]["numeric"] and "day" in plan.compiled["features"]["left_out"]


def test_unknown_plan_id(ws, tmp_path):
    with pytest.raises(CompileError, match="not found.*no plans yet"):
        load_plan("plan-20240101-000000-abcdef", tmp_path)
    with pytest.raises(CompileError, match="not found.*no plans yet"):
        load_plan("plan-4", tmp_path)
    for _ in range(3):
        save_plan(make_plan("predict outcome", ws, "pima"), tmp_path)
    with pytest.raises(CompileError, match=r"plan 'plan-4' not found \(the latest are plan-1, plan-2, plan-3; "
                                           r"see specml plan list\)"):
        load_plan("plan-4", tmp_path)
    with pytest.raises(CompileError, match="plan ids look like plan-3"):
        load_plan("dia", tmp_path)
    with pytest.raises(CompileError, match="did you mean 'plan-2'"):
        load_plan("pla-2", tmp_path)


def test_plans_written_as_files_by_earlier_versions_are_still_read(ws, tmp_path):
    old = make_plan("predict outcome", ws, "pima")
    old.plan_id = "plan-20240101-120000-1a2b3c"
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / f"{old.plan_id}.json").write_text(json.dumps(old.to_dict()), encoding="utf-8")
    new_id = save_plan(make_plan("predict outcome", ws, "pima"), tmp_path)
    assert list_plans(tmp_path) == [old.plan_id, new_id]
    assert load_plan(old.plan_id, tmp_path) == old


def test_estimate_grows_with_work():
    small = estimate_seconds(1_000, 1_000, 10, 32)
    assert estimate_seconds(1_000, 10_000, 10, 32) > small
    assert estimate_seconds(1_000_000, 1_000, 10, 32) > small
    assert estimate_seconds(1_000, 1_000, 20, 32) == pytest.approx(2 * small)


def test_a_wide_table_is_profiled_in_small_queries(ws, monkeypatch):
    """Issue 15: one SELECT of every column's aggregates made DuckDB's planning quadratic (400 columns: 14 s,
    2,000: minutes); queries of DESCRIBE_CHUNK columns keep a profile near-linear. Same answers either way."""
    from specml.compile.profile import leakage_suspects, profile_table
    from specml.data.workspace import DESCRIBE_CHUNK

    cols = ", ".join(f"(i * {k + 1}) % {k + 2} AS c{k}" for k in range(100))
    ws.sql(f"CREATE TABLE wide AS SELECT {cols}, i % 2 AS y, i % 2 AS y_copy FROM range(60) t(i)")
    sizes: list[int] = []
    run = ws._run
    monkeypatch.setattr(ws, "_run", lambda query, *a: sizes.append(len(set(re.findall(r'"c\d+"', query)))) or
                        run(query, *a))  # the columns each query reads
    profile = profile_table(ws, "wide")
    suspects = leakage_suspects(ws, "wide", profile, ["y"])
    assert max(sizes) <= DESCRIBE_CHUNK and len(sizes) > 6
    assert [(c.distinct, c.min, c.max) for c in profile.columns[:3]] == [(2, 0, 1), (3, 0, 2), (4, 0, 3)]
    assert profile.column("c99").distinct == 60 and profile.column("y").nulls == 0
    assert [s.column for s in suspects] == ["c0", "y_copy"]  # both equal y
