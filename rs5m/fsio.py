"""Atomic file writes and per-partition stats files (the done markers of the pipeline).

A stats file is written last, after every other output of its partition, by an atomic rename; a
partition whose stats file exists and parses is finished and is skipped on rerun.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as pretty JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str), encoding="utf-8")


def write_parquet(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Write one Arrow table as a parquet file, atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


@dataclass
class PartitionStats:
    """Counts of one stage over one partition: ``n_in == n_out + sum(removed.values())``."""

    stage: str
    source: str
    partition: str
    subset: str = "pub11"
    n_in: int = 0
    n_out: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def remove(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rows removed under ``reason``."""
        if n:
            self.removed[reason] = self.removed.get(reason, 0) + n

    def check(self) -> None:
        """Raise ``ValueError`` when the counts do not add up."""
        if self.n_in != self.n_out + sum(self.removed.values()):
            raise ValueError(
                f"{self.stage}/{self.source}/{self.partition}: n_in={self.n_in} != "
                f"n_out={self.n_out} + removed={self.removed}"
            )

    def write(self, path: str | os.PathLike[str]) -> None:
        """Check the invariant, then write the stats file (the partition's done marker)."""
        self.check()
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> PartitionStats:
        """Read a stats file; raise ``ValueError`` if it is corrupt or inconsistent."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            stats = cls(**data)
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"corrupt stats file {path}: {exc}") from exc
        stats.check()
        return stats


def read_done(path: str | os.PathLike[str]) -> PartitionStats | None:
    """Return the stats of a finished partition, or ``None`` if it is not (validly) marked done."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        return PartitionStats.read(p)
    except ValueError:
        return None
