"""Fuzzed bad input (hypothesis) for the ingest adapters, egress rules, image checks, tar reading and
RS3 metadata readers.

Shared helpers: ``fuzz_settings`` (small example counts by default, larger with ``RS5M_FUZZ_LONG=1``),
``record`` (appends one JSON line per generated input to ``$RS5M_RELIABILITY_OUT`` when set, read by
``bench/reliability.py``) and ``tree`` (a listing of the files under a folder, to prove nothing was
written outside the version folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, settings

LONG = os.environ.get("RS5M_FUZZ_LONG", "") not in ("", "0")


def fuzz_settings(short: int, long: int | None = None) -> settings:
    """Hypothesis settings: ``short`` examples (CI) or ``long`` (default 10x) under ``RS5M_FUZZ_LONG=1``."""
    return settings(
        max_examples=(long or short * 10) if LONG else short,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        derandomize=not LONG,
    )


def record(
    category: str, *, handled: bool, crash: bool = False, outside: int = 0, lost: int = 0, detail: str = ""
) -> None:
    """Append one input's outcome to ``$RS5M_RELIABILITY_OUT`` (a JSON-lines file), when it is set.

    ``handled``: the input ended as a kept row/result or a recorded reason without an unexpected
    exception; ``crash``: the code under test raised an unexpected exception; ``outside``: files
    written outside the version folder; ``lost``: input rows that ended
    neither kept nor rejected.
    """
    out = os.environ.get("RS5M_RELIABILITY_OUT")
    if not out:
        return
    line = {
        "category": category,
        "handled": handled,
        "crash": crash,
        "outside": outside,
        "lost": lost,
        "detail": detail,
    }
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def tree(root: Path) -> set[str]:
    """Relative paths of every file and folder under ``root`` (symlinks not followed)."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}
