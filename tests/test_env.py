"""Numbers read from the environment: a bad value is a one-line error naming the variable, not ignored."""

from __future__ import annotations

import pytest

from specml.env import SettingError, number
from specml.errors import SpecmlError


def test_unset_or_blank_is_the_default_and_a_value_is_read(monkeypatch):
    monkeypatch.delenv("SPECML_X", raising=False)
    assert number("SPECML_X", 7) == 7
    monkeypatch.setenv("SPECML_X", "  ")
    assert number("SPECML_X", 7) == 7
    monkeypatch.setenv("SPECML_X", "1e9")
    assert number("SPECML_X", 7) == 1_000_000_000
    monkeypatch.setenv("SPECML_X", "2.5")
    assert number("SPECML_X", 60.0, float) == 2.5


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "2.5", "inf", "nan"])
def test_a_bad_value_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("SPECML_X", raw)
    with pytest.raises(SettingError, match=rf"environment variable SPECML_X: '{raw}' is not a positive whole number"):
        number("SPECML_X", 7)
    assert issubclass(SettingError, SpecmlError)


def test_the_limits_read_through_it(monkeypatch):
    from specml.graph.check import max_activations, max_params
    from specml.spec.yaml_io import max_bytes

    monkeypatch.setenv("SPECML_MAX_PARAMS", "lots")
    with pytest.raises(SettingError, match="SPECML_MAX_PARAMS"):
        max_params()
    monkeypatch.setenv("SPECML_MAX_ACTIVATIONS", "1e6")
    monkeypatch.setenv("SPECML_MAX_SPEC_BYTES", "2048")
    assert max_activations() == 1_000_000 and max_bytes() == 2048
