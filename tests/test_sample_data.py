"""The demo's bundled specs and data are the repository's own, not drifting copies."""

from testkit import ROOT, SAMPLE_DATA

SAMPLE = SAMPLE_DATA


def test_bundled_pima_specs_are_the_example_specs():
    for kind in ("model", "trainer"):
        bundled = (SAMPLE / f"pima_mlp.{kind}.yaml").read_bytes()
        assert bundled == (ROOT / "examples" / "pima_mlp" / f"{kind}.yaml").read_bytes(), kind


def test_bundled_pima_data_is_the_shared_data_set():
    bundled = (SAMPLE / "pima_diabetes.csv").read_text()
    lines = bundled.splitlines()
    assert lines[0] == "pregnancies,glucose,blood_pressure,skin_thickness,insulin,bmi,diabetes_pedigree,age,outcome"
    assert len(lines) == 769
    shared = ROOT.parent / "shared" / "data" / "pima_diabetes.csv"
    if shared.exists():  # beside a checkout of the project
        assert shared.read_text() == bundled
