"""Every `specml ...` line README.md and docs/*.md show runs as written (slow: it trains).

The lines of each document's ``bash`` / ``console`` blocks run in order in a fresh specml home, from a
folder holding the repository's examples/. A line shown with an ``error`` line in its output must fail
with exit 1; every other line must exit 0. Usage forms (``[--opt]``, ``A | B``, ``...``, UPPER-CASE
placeholders) and interactive commands are not commands to run (:func:`usage_form`); neither are
``text`` blocks, which the documents use for lines about the reader's own files and tables.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = ("", "bash", "console", "sh", "shell")  # the fences whose lines run; ``text`` blocks do not
INTERACTIVE = ("specml shell", "specml jobs logs", "specml demo")


def commands(path: Path) -> list[tuple[str, str | None]]:
    """(command line, the error it is shown with or None) for each `specml` line of a document."""
    out: list[tuple[str, str | None]] = []
    for lines in blocks(path.read_text(encoding="utf-8")):
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1].rstrip() + " " + lines[i].strip()
            i += 1
            line = line[2:] if line.startswith("$ ") else line
            if not line.startswith("specml "):
                continue
            shown = []  # the output shown under it, up to the next command
            for after in lines[i:]:
                if after.strip().startswith(("$ ", "specml ")):
                    break
                shown.append(after.strip())
            error = next((x for x in shown if x.startswith("error")), None)
            out.append((_strip_comment(line), error))
    return out


def blocks(text: str) -> list[list[str]]:
    """The lines of each fenced block whose language is in :data:`RUN`."""
    out: list[list[str]] = []
    current: list[str] | None = None
    language = None
    for line in text.split("\n"):
        fence = line.strip().startswith("```")
        if fence and current is None:
            language, current = line.strip()[3:].strip(), []
        elif fence:
            if language in RUN:
                out.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return out


def _strip_comment(line: str) -> str:
    words = shlex.shlex(line, posix=True, punctuation_chars=False)
    words.whitespace_split = True
    words.commenters = "#"
    return shlex.join(list(words)) if "#" in line else line


def usage_form(line: str) -> bool:
    """A line that shows a command's shape rather than a command to run."""
    if line.startswith(INTERACTIVE) or "<<" in line or "..." in line or "…" in line:
        return True
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "", line)
    return bool(re.search(r"\[|\s\|\s|\b[A-Z]{2,}\b", bare))


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_documented_commands_run_as_written(doc, tmp_path):
    lines = [(c, e) for c, e in commands(doc) if not usage_form(c)]
    if not lines:
        pytest.skip(f"{doc.name} shows no runnable specml line")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copytree(ROOT / "tests" / "fixtures", work / "tests" / "fixtures")
    env = {**os.environ, "SPECML_HOME": str(tmp_path / "home"), "CI": "1"}
    env.pop("SPECML_WORKSPACE", None)
    failures = []
    try:
        _run(lines, work, env, failures)
    finally:  # a documented `specml tensorboard` leaves its server running: stop it
        subprocess.run([sys.executable, "-m", "specml", "tensorboard", "--stop"], cwd=work, env=env,
                       capture_output=True, timeout=120, check=False)
    assert not failures, f"{doc.name}:\n" + "\n".join(failures)


def _run(lines: list[tuple[str, str | None]], work: Path, env: dict, failures: list[str]) -> None:
    for line, error in lines:
        argv = shlex.split(line.split(">", 1)[0]) if " > " in line else shlex.split(line)
        done = subprocess.run([sys.executable, "-m", "specml", *argv[1:]], cwd=work, env=env, capture_output=True,
                              text=True, timeout=1800, check=False)
        if error is None and done.returncode != 0:
            failures.append(f"{line}\n  exit {done.returncode}: {done.stderr.strip()[-500:]}")
        elif error is not None and (done.returncode != 1 or "error" not in done.stderr):
            failures.append(f"{line}\n  shown failing with {error!r}, got exit {done.returncode}")
        assert "Traceback" not in done.stderr, (line, done.stderr)


def test_the_extraction_finds_the_readme_flow():
    found = [c for c, _ in commands(ROOT / "README.md")]
    assert found[0] == "specml data sample pima"
    assert any(c.startswith("specml train --model-spec examples/pima_mlp/model.yaml") for c in found)
    assert usage_form("specml jobs logs 3 [--follow] [--lines N]") and usage_form("specml train ... --background")
    assert not usage_form('specml model --name dia --instruction "Build a model" --table pima --dry-run')
