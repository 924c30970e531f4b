"""A classical run is tracked like a neural one (run directory, facts, figures with feature importance, registry
run, lineage), and ``specml evaluate`` on it says which rows it measured, the threshold, the confusion matrix and
where its figures are."""

from __future__ import annotations

import json

import pytest
from test_classical_helpers import write_spec
from threadpoolctl import threadpool_limits

from specml.classical.train import train_estimator
from specml.track.registry import Registry
from testkit import ok

pytestmark = pytest.mark.slow  # a training that draws its figures (~5 s with the imports)


@pytest.fixture(scope="module")
def trained(pima_home, tmp_path_factory):
    spec = write_spec(tmp_path_factory.mktemp("specs"), "lr", "estimator: {type: LogisticRegression}\n"
                                                              "target: outcome\nverbose: 0\n")
    with threadpool_limits(1):
        train_estimator(spec, table="pima", name="lr", workspace=pima_home / "workspace.duckdb", home=pima_home)
    meta = json.loads((pima_home / "models" / "lr" / "metadata.json").read_text())
    return pima_home, meta


def test_the_run_directory_holds_specs_facts_figures_and_tensorboard_images(trained):
    home, meta = trained
    run = home / "runs" / meta["run"]["run_id"]
    assert json.loads((home / "models" / "lr" / "run.json").read_text())["run_dir"] == str(run)
    assert "LogisticRegression" in (run / "specs" / "estimator.yaml").read_text()
    assert {"train", "validation", "test"} <= set(json.loads((run / "facts" / "metrics.json").read_text()))
    events = [json.loads(x) for x in (run / "facts" / "events.jsonl").read_text().splitlines()]
    assert {e["split"] for e in events} >= {"train", "test"}
    figures = {p.relative_to(run / "figures").as_posix() for p in (run / "figures").rglob("*.png")}
    assert {"feature_importance.png", "test_split/roc.png", "test_split/calibration.png"} <= figures
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))


def test_the_registry_and_the_metadata_hold_the_lineage(trained):
    home, meta = trained
    with Registry(home=home) as reg:
        row = reg.get_run(meta["run"]["run_id"])
    assert row.status == "completed" and row.table_name == "pima" and row.data_rows == 768 and row.data_hash
    assert meta["lineage"]["table"] == "pima" and meta["lineage"]["data_fingerprint"] == row.data_hash
    assert meta["threshold"]["chosen_on"] == "validation rows"


def test_evaluate_warns_on_training_rows_and_shows_what_it_measured(trained, cli):
    home, meta = trained
    result = ok(cli("evaluate", "--model", "lr", "--table", "pima", "--threshold", "youden", home=home))
    assert "rows 'lr' trained or validated on (table 'pima')" in result.stderr
    assert f"threshold {meta['threshold']['youden']:g}" in result.stdout
    assert "confusion matrix" in result.stdout and "support" in result.stdout
    figures = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("figure: ")]
    assert figures and all(str(home) in f for f in figures)


def test_the_report_of_a_classical_model_has_every_section_and_its_figures(trained, cli):
    from pathlib import Path

    from specml.report import SECTIONS

    home, _ = trained
    page = Path(ok(cli("report", "--model", "lr", home=home)).stdout.split("model report: ", 1)[1].strip())
    text = page.read_text(encoding="utf-8")
    assert all(f"<section id='{key}'>" in text for key in SECTIONS)
    assert "LogisticRegression" in text and text.count("src='data:image/png;base64,") >= 2
