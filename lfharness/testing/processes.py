"""Process checks for tests that start children and must see them end."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process pid still runs: a zombie still answers kill 0 until it is reaped, so its
    /proc status is read too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()
