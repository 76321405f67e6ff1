"""Process helpers shared by tests that start and stop real processes."""

from __future__ import annotations

import time

import psutil


def gone(pid: int, within_s: float) -> bool:
    """Whether process ``pid`` ends (or is a zombie not reaped yet) within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
