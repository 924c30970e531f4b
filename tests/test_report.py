"""``specml report``: one self-contained HTML page per model, checked as text and in a real browser."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from specml import api
from specml.cli.app import app
from specml.data.workspace import Workspace
from specml.demo import sample_path
from specml.report import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pima_mlp"

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home with a 2-epoch Pima MLP 'm1' trained on pima_train."""
    home = tmp_path_factory.mktemp("home")
    trainer = home / "trainer.yaml"
    trainer.write_text((EXAMPLE / "trainer.yaml").read_text(encoding="utf-8").replace("epochs: 100", "epochs: 2"),
                       encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECML_HOME", str(home))
        mp.delenv("SPECML_WORKSPACE", raising=False)
        with Workspace() as ws:
            ws.load(sample_path("pima_diabetes.csv"), "pima")
            ws.split("pima", test_size=0.2, stratify="outcome", seed=42)
        api.train(EXAMPLE / "model.yaml", trainer, table="pima_train", name="m1", verbose=False)
        yield home


@pytest.fixture(scope="module")
def page(home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECML_HOME", str(home))
        result = CliRunner().invoke(app, ["report", "--model", "m1", "--table", "pima_test"])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.split("model report: ", 1)[1].strip())
    assert path == home / "models" / "m1" / "report.html"
    return path


def test_the_page_is_one_file_with_every_section(page):
    text = page.read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f"<section id='{key}'>" in text, key
    assert "src='http" not in text and "<script" not in text  # self-contained: nothing fetched
    images = re.findall(r"src='data:image/png;base64,", text)
    assert len(images) >= 4  # training curves and the evaluation's figures
    assert "on table pima_test (154 rows)" in text and "predicted 1" in text and "support" in text
    assert "model_ref: pima-mlp" in text  # the trainer spec as the run used it
    assert "torch" in text  # library versions


def test_a_missing_model_is_one_error_line(home, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(home))
    result = CliRunner().invoke(app, ["report", "--model", "nope"])
    assert result.exit_code == 1 and result.stderr.startswith("error: model 'nope' not found")


@pytest.mark.slow
def test_the_page_renders_in_chromium_without_console_errors(page):
    webdriver = pytest.importorskip("selenium.webdriver")
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver_path:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(page.resolve().as_uri())
        for key in SECTIONS:
            section = driver.find_element(By.ID, key)
            assert section.is_displayed() and section.find_element(By.TAG_NAME, "h2").text, key
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) >= 4
        for img in images:
            width = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
            assert width and width > 0, img.get_attribute("alt")
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
    finally:
        driver.quit()


def test_an_existing_output_file_is_replaced_only_with_replace(home, page, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(home))
    out = tmp_path / "card.html"
    out.write_text("keep me")
    result = CliRunner().invoke(app, ["report", "--model", "m1", "-o", str(out)])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: --output {out} already exists; pass --replace")
    assert out.read_text() == "keep me"
    result = CliRunner().invoke(app, ["report", "--model", "m1", "-o", str(tmp_path)])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: --output {tmp_path} is a directory")
    assert CliRunner().invoke(app, ["report", "--model", "m1", "-o", str(out), "--replace"]).exit_code == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert CliRunner().invoke(app, ["report", "--model", "m1"]).exit_code == 0  # the default page: always rewritten
