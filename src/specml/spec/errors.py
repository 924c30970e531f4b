"""Errors a person can act on: file, field path, what was expected, and a "did you mean".

Every problem found in a spec becomes a :class:`SpecIssue`. Loading collects all the issues it can
find and raises one :class:`SpecError` holding them, so a user fixes a file in one pass instead of
one error per run. Warnings (accepted, but worth saying) are issued as :class:`SpecWarning`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from specml.errors import SpecmlError

Loc = tuple[str | int, ...]


def format_path(loc: Sequence[str | int]) -> str:
    """``("graph", 2, "inputs", "input")`` -> ``graph[2].inputs.input``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN.fullmatch(str(part)):
            out += ("." if out else "") + str(part)
        else:  # empty, blank or odd keys stay visible: ['\r'], ['my key']
            out += f"[{str(part)!r}]"
    return out or "(top level)"


_PLAIN = re.compile(r"[A-Za-z0-9_\-$]+")


def did_you_mean(word: str, candidates: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Close matches of ``word`` among ``candidates`` (case-insensitive), best first."""
    pool = [str(c) for c in candidates]
    if not pool:
        return []
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(str(word).lower(), list(lowered), n=n, cutoff=cutoff)
    return [lowered[h] for h in hits]


def suggestion(word: str, candidates: Iterable[str]) -> str | None:
    hits = did_you_mean(word, candidates)
    return f"did you mean '{hits[0]}'?" if hits else None


@dataclass(frozen=True)
class SpecIssue:
    """One problem in one place of one file."""

    loc: Loc
    message: str
    hint: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def path(self) -> str:
        return format_path(self.loc)

    def where(self) -> str:
        place = self.file or "<spec>"
        if self.line is not None:
            place += f":{self.line}"
        return place

    def __str__(self) -> str:
        text = f"{self.where()}: {self.path}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class SpecError(SpecmlError, ValueError):
    """A spec that cannot be used, with every issue found in it."""

    issues: list[SpecIssue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.issues) == 1:
            return str(self.issues[0])
        head = f"{len(self.issues)} problems in {self.issues[0].where().split(':')[0]}:" if self.issues else ""
        return "\n".join([head, *("  " + str(i) for i in self.issues)])

    def with_file(self, file: str | None, lines: dict[Loc, int] | None = None) -> SpecError:
        """The same issues, placed in ``file`` (and on their YAML line where known)."""
        placed = []
        for issue in self.issues:
            line = issue.line
            if line is None and lines:
                line = _nearest_line(issue.loc, lines)
            placed.append(SpecIssue(issue.loc, issue.message, issue.hint, issue.file or file, line))
        return SpecError(placed)


def _nearest_line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if tuple(loc[:end]) in lines:
            return lines[tuple(loc[:end])]
    return None


class SpecWarning(UserWarning):
    """A spec was accepted, but something in it deserves a look (e.g. a setting stated twice)."""


class IssueList(list):
    """A list of issues with a helper for the common "add one" call."""

    def add(self, loc: Sequence[str | int], message: str, hint: str | None = None) -> None:
        self.append(SpecIssue(tuple(loc), message, hint))
