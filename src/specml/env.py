"""Numbers a user may set in the environment (limits, waits): a value that is not a positive number is a clear
error naming the variable, never ignored and never a traceback. Torch-free."""

from __future__ import annotations

import os

from specml.errors import SpecmlError


class SettingError(SpecmlError, ValueError):
    """An environment variable specml reads holds something it cannot use."""


def number(name: str, default: int | float, kind: type[int] | type[float] = int) -> int | float:
    """``$name`` as a positive ``kind`` (``1e9`` is accepted for a whole number), or ``default`` when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = None
    whole = kind is int
    if value is None or not value > 0 or value == float("inf") or (whole and not value.is_integer()):
        raise SettingError(f"environment variable {name}: {raw!r} is not a positive "
                           f"{'whole number' if whole else 'number'}", f"unset it for the default ({default:,})")
    return int(value) if whole else value
