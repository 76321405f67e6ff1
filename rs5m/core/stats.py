"""Per-partition stats files: the counts of one stage over one partition, and the pipeline's done markers.

A stats file is written last, after every other output of its partition, by an atomic rename, and
sealed with a sha256 of its content (``rs5m.core.io.write_sealed_json``): a partition is finished, and
skipped on rerun, only when its stats file exists, parses, matches its checksum and its counts add up.
Any other stats file is corrupt, and ``read_done`` reports the partition as not done (redone).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rs5m.core.io import read_sealed_json, warn_corrupt, write_sealed_json


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
        """Check the invariant, then write the stats file (the partition's done marker) with its checksum."""
        self.check()
        write_sealed_json(path, asdict(self))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> PartitionStats:
        """Read a stats file; raise ``ValueError`` naming it if it is unreadable, has no checksum or a
        wrong one (any change after ``write``), lacks or has unknown fields, or its counts do not add up."""
        try:
            data = read_sealed_json(path)
        except ValueError as exc:
            raise ValueError(f"corrupt stats file {exc}") from exc
        try:
            stats = cls(**data)
            stats.check()
        except (TypeError, AttributeError, ValueError) as exc:  # wrong fields, field types or counts
            raise ValueError(f"corrupt stats file {path}: {exc}") from exc
        return stats


def read_done(path: str | os.PathLike[str]) -> PartitionStats | None:
    """Return the stats of a finished partition, or ``None`` if it is not validly marked done.

    A stats file that exists but is corrupt (see ``PartitionStats.read``) counts as not done: the
    caller's stage redoes the partition, and a warning naming the file is logged once.
    """
    p = Path(path)
    if not p.exists():
        return None
    try:
        return PartitionStats.read(p)
    except ValueError as exc:
        warn_corrupt(p, f"{exc}; its partition is redone")
        return None
