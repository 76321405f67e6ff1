"""The final keep decision of a version: the one definition of "kept" shared by packaging and version diffs.

``keep_decision(version_dir)``: rows with ``dup_keep`` in the dedup decisions and, when the outlier decisions
exist, also ``keep_outlier`` there. A dedup-kept uid missing from the outlier decisions is an error, never a
silent drop. Every SQL statement is parameterised: file paths are bound, never formatted into the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName

RULE_DEDUP = "dedup.dup_keep"


RULE_OUTLIER = "dedup.dup_keep AND outlier.keep_outlier"


@dataclass(frozen=True)
class KeepDecision:
    """A SQL relation of the kept rows of a version: ``uid, source, dup_cluster`` plus ``score_cols``."""

    rule: str
    sql: str
    params: list[Any]
    score_cols: tuple[str, ...]
    inputs: tuple[Path, ...]


def sql_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (column names read from files are never trusted)."""
    return '"' + name.replace('"', '""') + '"'


def keep_decision(version_dir: Path) -> KeepDecision:
    """The final keep decision of a version; ``ValueError`` when its dedup stage has not run."""
    layout = VersionLayout.of(version_dir)
    dedup = layout.barrier_file(StageName.DEDUP, "decisions.parquet")
    if not dedup.is_file():
        raise ValueError(f"version {version_dir.name!r} has no keep decision yet ({dedup} is missing)")
    outlier = layout.barrier_file(StageName.OUTLIER, "decisions.parquet")
    if not outlier.is_file():
        sql = "SELECT uid, source, dup_cluster FROM read_parquet(?) WHERE dup_keep"
        return KeepDecision(RULE_DEDUP, sql, [str(dedup)], (), (dedup,))
    schema = pq.read_schema(outlier)
    scores = tuple(
        f.name
        for f in schema
        if (pa.types.is_floating(f.type) or pa.types.is_integer(f.type)) and f.name != "keep_outlier"
    )
    picked = "".join(f", o.{sql_ident(c)}" for c in scores)
    sql = (
        f"SELECT d.uid, d.source, d.dup_cluster{picked} FROM read_parquet(?) d "
        "JOIN read_parquet(?) o ON o.uid = d.uid WHERE d.dup_keep AND o.keep_outlier"
    )
    with duckdb.connect() as con:
        missing = con.execute(
            "SELECT count(*), min(d.uid) FROM read_parquet(?) d ANTI JOIN read_parquet(?) o ON o.uid = d.uid "
            "WHERE d.dup_keep",
            [str(dedup), str(outlier)],
        ).fetchall()[0]
    if missing[0]:
        raise ValueError(
            f"{outlier} has no row for {missing[0]} dedup-kept uids (e.g. {missing[1]!r}); "
            "rerun the outlier stage"
        )
    return KeepDecision(RULE_OUTLIER, sql, [str(dedup), str(outlier)], scores, (dedup, outlier))
