"""Hostile YAML *text* (not dicts): aliases, anchors, deep nesting, tags, control characters, huge scalars,
mixed into real spec files. Every example ends within a time and memory budget as a parsed spec or a
SpecError — never another exception, a hang or a runaway allocation. Seeded: Hypothesis derandomized."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specml.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[2]
BASES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*/*.yaml"))[:12]]
TIME_BUDGET_S = 5.0
MEMORY_BUDGET = 256 * 2**20

PIECES = st.sampled_from([
    "&a [*a]", "&x {k: *x}", "&b [1, 2, 3]", "*b", "*undefined", "[" * 200 + "]" * 200, "{" * 80 + "}" * 80,
    "!!int abc", "!!float x", "!!timestamp 2024-13-45", "!!binary ??", "!!set {a}", "!!python/object:os.system x",
    "\x00", "\x07", "\ufeff", "1e308", "-.inf", ".nan", "0x" + "f" * 40, "9" * 400, "'" + "x" * 5000 + "'",
    "? complex key", "- - - -", "<<: *b", "%YAML 1.1", "--- ", "...", "|\n  block", ">-\n  folded", "\t", "key: value",
])


def _laughs(width: int, depth: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    return "\n".join(lines) + "\n"


@st.composite
def hostile_text(draw) -> str:
    base = draw(st.sampled_from(BASES))
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines)))
        indent = " " * draw(st.sampled_from([0, 2, 4]))
        key = draw(st.sampled_from(["", "params: ", "x: ", "- ", "inputs: "]))
        lines.insert(at, indent + key + draw(PIECES))
    if draw(st.booleans()):
        lines.append(_laughs(draw(st.integers(2, 12)), draw(st.integers(2, 9))))
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile_text())
def test_hostile_yaml_text_is_bounded_and_clean(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "spec.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        load_spec(path, check=False)
    except SpecError:
        pass
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < TIME_BUDGET_S, f"{seconds:.1f} s on:\n{text[:500]}"
    assert peak < MEMORY_BUDGET, f"{peak / 2**20:.0f} MiB on:\n{text[:500]}"
