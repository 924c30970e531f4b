"""Checks shared by the CLI tests: a command succeeded, and no Python traceback reached the user."""

import re
import subprocess


def no_traceback(result: subprocess.CompletedProcess) -> None:
    both = result.stdout + result.stderr
    assert "Traceback" not in both, both
    assert not re.search(r"^\w+(Error|Exception): ", both, re.M), both


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout + result.stderr
    no_traceback(result)
    return result
