"""The hostile YAML of issue 15, one test each: every case is a SpecError naming the file and line, found in
milliseconds without expanding anything (the hypothesis fuzz in test_fuzz_yaml_text mixes them at random)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from specml.spec import SpecError, load_spec
from specml.spec.yaml_io import MAX_DEPTH


def _laughs(width: int = 9, depth: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    return "version: 1\nname: bomb\n" + "\n".join(lines) + "\n"


CASES = {
    "billion laughs (9x9)": (_laughs(), r"bomb\.yaml:\d+: .*aliases expand to more than 100,000 values"),
    "recursive alias": ("version: 1\na: &a [*a]\n", r"bomb\.yaml:2: .*a recursive alias"),
    "NUL byte": ("version: 1\nname: x\x00y\n", r"bomb\.yaml:2: .*not valid YAML: unacceptable character #x0000"),
    "1,000 nested brackets": ("a: " + "[" * 1000 + "]" * 1000 + "\n",
                              rf"bomb\.yaml:1: .*nests deeper than {MAX_DEPTH} levels"),
    "!!timestamp abc": ("version: 1\nwhen: !!timestamp abc\n", r"bomb\.yaml:2: .*not valid YAML: .*timestamp"),
    "!!int abc": ("version: 1\nname: x\nparams:\n  n: !!int abc\n",
                  r"bomb\.yaml:4: .*a value cannot be read \(invalid literal for int\(\).*'abc'\)"),
}


@pytest.mark.parametrize("text, message", list(CASES.values()), ids=list(CASES))
def test_hostile_yaml_is_a_clean_error_with_its_line(tmp_path, text, message):
    path = tmp_path / "bomb.yaml"
    path.write_bytes(text.encode("utf-8"))
    started = time.perf_counter()
    with pytest.raises(SpecError, match=message):
        load_spec(path, check=False)
    assert time.perf_counter() - started < 2.0


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_laughs(), encoding="utf-8")  # 9**9 = 387 million values once expanded
    tracemalloc.start()
    try:
        with pytest.raises(SpecError):
            load_spec(path, check=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20


def test_a_file_over_the_size_limit_is_refused_and_the_limit_can_be_raised(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\nname: x\ndescription: '" + "x" * 2000 + "'\n", encoding="utf-8")
    monkeypatch.setenv("SPECML_MAX_SPEC_BYTES", "1000")
    with pytest.raises(SpecError, match=r"big\.yaml: .*at most 1,000 \(set SPECML_MAX_SPEC_BYTES to allow more\)"):
        load_spec(path, check=False)
    monkeypatch.setenv("SPECML_MAX_SPEC_BYTES", "10000")
    with pytest.raises(SpecError) as raised:  # read now; what is missing is the spec's own business
        load_spec(path, check=False)
    assert "SPECML_MAX_SPEC_BYTES" not in str(raised.value)
