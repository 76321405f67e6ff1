"""Checks ``rs5m build`` makes before it starts Prefect or Dask, or writes anything: one-line errors at once.

The config and its inputs are checked by the library (``rs5m.config`` loads it, ``rs5m.pipeline.preflight``
opens every input); here only what needs the CLI's own reach: ``check_scheduler`` (``tasks.scheduler``,
shared with the flow), an external Dask scheduler (``--dask-address``, ``dask.address``) is reachable and
answers as a scheduler; ``check_lineage``, the root's lineage database, when present, opens and reads.
"""

from __future__ import annotations

from pathlib import Path

from tasks.scheduler import check_scheduler

__all__ = ["check_lineage", "check_scheduler"]


def check_lineage(db_path: Path) -> None:
    """Open the lineage database read-only and read its versions (nothing to check when it is absent)."""
    from rs5m.lineage import store as lineage

    if not db_path.exists():
        return
    with lineage.named_errors(db_path), lineage.connect(db_path, read_only=True) as con:
        con.execute("SELECT count(*) FROM versions").fetchall()
