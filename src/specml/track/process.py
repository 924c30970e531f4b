"""Is a process still the one we started? (pid + its start time, so a reused pid is told apart.)"""

from __future__ import annotations

import os
from pathlib import Path


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int | None, started: int | None = None) -> bool:
    """True while ``pid`` runs and is the same process (start time) and not a zombie."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self/stat").exists()  # gone, or no /proc on this system
    except OSError:
        return True
    after = stat.rsplit(")", 1)[1].split()
    if after[0] in ("Z", "X"):
        return False
    return started is None or int(after[19]) == started
