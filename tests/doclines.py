"""The ``specml ...`` lines a document shows, and running them as written in a temporary home.

The lines of a document's ``bash`` / ``console`` blocks run in order in a fresh specml home, from a folder
holding the repository's examples/ and tests/fixtures/. A line shown with an ``error`` line in its output
must fail with exit 1; every other line must exit 0. Usage forms (``[--opt]``, ``A | B``, ``...``,
UPPER-CASE placeholders) and interactive commands are not commands to run (:func:`usage_form`); neither are
``text`` blocks, which the documents use for lines about the reader's own files and tables.
Used by ``tests/test_docs_commands.py`` (README.md, docs/) and ``tests/examples/test_examples_readme.py``.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from testkit import FIXTURES, ROOT, specml_env

RUN = ("", "bash", "console", "sh", "shell")  # the fences whose lines run; ``text`` blocks do not
INTERACTIVE = ("specml shell", "specml jobs logs", "specml demo")
SPECML_MODULE = [sys.executable, "-m", "specml"]


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


def runnable(path: Path) -> list[tuple[str, str | None]]:
    """The lines of :func:`commands` that are commands to run (no usage forms)."""
    return [(c, e) for c, e in commands(path) if not usage_form(c)]


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


def argv(line: str) -> list[str]:
    """The line's words as the shell splits them, up to an unquoted ``>`` redirect."""
    words = shlex.split(line)
    return words[:words.index(">")] if ">" in words else words


@contextmanager
def documented_home(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """(the folder the lines run from, their environment): a fresh specml home under ``tmp_path`` and a copy
    of examples/ and tests/fixtures/; a documented ``specml tensorboard`` left running is stopped after."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copytree(FIXTURES, work / "tests" / "fixtures")
    env = specml_env(tmp_path / "home")
    try:
        yield work, env
    finally:
        subprocess.run([*SPECML_MODULE, "tensorboard", "--stop"], cwd=work, env=env, capture_output=True,
                       timeout=120, check=False)


def run_line(line: str, work: Path, env: dict[str, str], extra: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """Run one documented line (plus ``extra`` words) the way a user would, through this interpreter."""
    return subprocess.run([*SPECML_MODULE, *argv(line)[1:], *extra], cwd=work, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)


def mismatch(line: str, error: str | None, done: subprocess.CompletedProcess) -> str | None:
    """What went differently from the document (None: as shown); a traceback is always a mismatch."""
    if "Traceback" in done.stderr:
        return f"{line}\n  traceback: {done.stderr.strip()[-800:]}"
    if error is None and done.returncode != 0:
        return f"{line}\n  exit {done.returncode}: {done.stderr.strip()[-500:]}"
    if error is not None and (done.returncode != 1 or "error" not in done.stderr):
        return f"{line}\n  shown failing with {error!r}, got exit {done.returncode}"
    return None


def run_document(doc: Path, tmp_path: Path, extra: dict[str, Sequence[str]] | None = None) -> list[str]:
    """Run every runnable line of ``doc`` in order; the mismatches. ``extra``: words appended to the lines
    that start with a key (e.g. a shorter training for the suite)."""
    failures = []
    with documented_home(tmp_path) as (work, env):
        for line, error in runnable(doc):
            more = next((words for start, words in (extra or {}).items() if line.startswith(start)), ())
            problem = mismatch(line, error, run_line(line, work, env, more))
            if problem:
                failures.append(problem)
    return failures
