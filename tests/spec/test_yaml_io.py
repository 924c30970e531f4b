"""Reading spec YAML: the same text is parsed once per process, and every caller gets its own copy."""

from __future__ import annotations

import pytest

from specml.spec import yaml_io
from specml.spec.errors import SpecError

TEXT = "a:\n  b: [1, 2]\n  c: x\n"


def test_a_parsed_text_is_remembered_and_each_caller_gets_a_copy(monkeypatch):
    parsed = []
    monkeypatch.setattr(yaml_io, "_PARSED", type(yaml_io._PARSED)())
    real = yaml_io._parse
    monkeypatch.setattr(yaml_io, "_parse", lambda text, file: parsed.append(file) or real(text, file))
    first, lines = yaml_io.parse_yaml(TEXT, "m.yaml")
    first["a"]["b"].append(3)  # the caller's copy: the next one does not see it
    second, lines2 = yaml_io.parse_yaml(TEXT, "m.yaml")
    assert second == {"a": {"b": [1, 2], "c": "x"}} and lines2 == lines and lines[("a", "c")] == 3
    assert parsed == ["m.yaml"]
    yaml_io.parse_yaml(TEXT, "other.yaml")  # another file: its own entry (errors name the file)
    assert parsed == ["m.yaml", "other.yaml"]


def test_a_lower_limit_applies_to_a_text_read_before(monkeypatch):
    monkeypatch.setattr(yaml_io, "_PARSED", type(yaml_io._PARSED)())
    yaml_io.parse_yaml(TEXT, "m.yaml")
    monkeypatch.setenv("SPECML_MAX_SPEC_BYTES", "10")
    with pytest.raises(SpecError, match="at most 10"):
        yaml_io.parse_yaml(TEXT, "m.yaml")
    monkeypatch.setattr(yaml_io, "MAX_DEPTH", 1)
    monkeypatch.delenv("SPECML_MAX_SPEC_BYTES")
    with pytest.raises(SpecError):
        yaml_io.parse_yaml(TEXT, "m.yaml")


def test_errors_are_not_remembered(monkeypatch):
    monkeypatch.setattr(yaml_io, "_PARSED", type(yaml_io._PARSED)())
    for _ in range(2):
        with pytest.raises(SpecError, match="not valid YAML"):
            yaml_io.parse_yaml("a: [1, 2\n", "bad.yaml")
    assert not yaml_io._PARSED
