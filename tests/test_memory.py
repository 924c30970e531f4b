"""specml.memory: the set-up's freed heap memory goes back to the operating system (glibc malloc_trim)."""

from __future__ import annotations

import sys

import pytest

from specml.memory import release_freed_memory


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_freed_heap_memory_is_returned():
    blocks = [bytearray(100_000) for _ in range(1500)]  # ~150 MB of heap blocks (each under the mmap threshold)
    pinned = bytearray(100_000)  # above them: the heap's top cannot shrink by itself
    del blocks
    before = _rss_mb()
    assert release_freed_memory() is True
    assert _rss_mb() < before - 100, "malloc_trim returned the freed blocks"
    del pinned
    assert release_freed_memory() in (True, False)  # nothing (or little) left to return: no error either way
