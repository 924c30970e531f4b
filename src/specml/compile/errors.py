"""Errors of the words -> specs compiler: each is a user mistake with a message that says what to do."""

from __future__ import annotations

from specml.errors import SpecmlError


class CompileError(SpecmlError, ValueError):
    """The instruction and the table cannot make a spec; the message says why and what to change."""


class TargetNotFound(CompileError):
    """No column of the table is the target the words name, and no conventional target column exists."""

    def __init__(self, message: str, columns: list[str]):
        super().__init__(message)
        self.columns = columns


class AmbiguousTarget(CompileError):
    """Several columns fit the words equally well: the user has to say which one."""

    def __init__(self, words: str, candidates: list[str]):
        self.words = words
        self.candidates = list(candidates)
        listed = ", ".join(f"'{c}'" for c in self.candidates)
        super().__init__(f"which column is the target for '{words}'? Candidates: {listed}. "
                         f"Say it in the instruction (e.g. \"predict {self.candidates[0]}\").")
