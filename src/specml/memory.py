"""Giving freed memory back to the operating system, once a run's set-up is done.

Reading a table and turning it into tensors frees many large temporaries (the Arrow table, gathered
columns, index arrays). glibc's malloc keeps freed heap memory for reuse instead of returning it, so a
training would carry that set-up's peak through every epoch. :func:`release_freed_memory` asks glibc to
return what is free (``malloc_trim``); elsewhere (macOS, musl, Windows) it does nothing. It is called
between phases, never in a loop. Torch-free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Return the heap memory malloc holds free to the operating system; True when some was returned."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
