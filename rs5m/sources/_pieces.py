"""Piece specs: how one big input file is split into partitions (see ``rs5m.sources.base``).

A spec is ``"<kind>:<first>-<last>"``: ``rg`` (parquet row groups, inclusive), ``rowid`` (SQLite
rowids, inclusive), ``members`` (archive members in name order, inclusive) or ``bytes`` (a half-open
byte range ``[first, last)`` of plain text; a line belongs to the range holding its first byte).
``""`` or ``None`` is the whole file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

KINDS = ("rg", "rowid", "members", "bytes")
_SPEC = re.compile(r"(rg|rowid|members|bytes):(-?\d+)-(-?\d+)")


@dataclass(frozen=True)
class Piece:
    """A parsed piece spec."""

    kind: str
    first: int
    last: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.first}-{self.last}"


def parse_piece(piece: str | None, path: str, allowed: tuple[str, ...]) -> Piece | None:
    """Parse ``piece`` for a file that can be split by ``allowed`` kinds; ``None`` for the whole file.

    Raises ``ValueError`` naming the file for a malformed spec or one of another kind.
    """
    if not piece:
        return None
    m = _SPEC.fullmatch(piece)
    if not m:
        raise ValueError(f"{path}: bad piece spec {piece!r} (expected e.g. 'rg:0-7', 'bytes:0-1024')")
    kind, first, last = m.group(1), int(m.group(2)), int(m.group(3))
    if kind not in allowed:
        what = ", ".join(allowed) if allowed else "none (read it whole)"
        raise ValueError(f"{path}: piece {piece!r} does not apply to this file (piece kinds: {what})")
    if first < 0 or last < first:
        raise ValueError(f"{path}: empty or negative piece range {piece!r}")
    return Piece(kind, first, last)


def group_ranges(sizes: list[int], target: int) -> list[tuple[int, int]]:
    """Consecutive index ranges ``(first, last)`` (inclusive) of ``sizes`` with sums near ``target``:
    an item is added while the running sum is below ``target`` (so no range is empty)."""
    out: list[tuple[int, int]] = []
    start, acc = 0, 0
    for i, s in enumerate(sizes):
        if acc and acc + s > target:
            out.append((start, i - 1))
            start, acc = i, 0
        acc += s
    if sizes:
        out.append((start, len(sizes) - 1))
    return out


def split_range(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    """``[first, last]`` (inclusive) cut into ``parts`` near-equal inclusive ranges."""
    parts = max(1, min(parts, last - first + 1))
    width = math.ceil((last - first + 1) / parts)
    return [(a, min(a + width - 1, last)) for a in range(first, last + 1, width)]
