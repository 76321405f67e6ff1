"""The per-uid status of a download partition, read back from img2dataset's shard files.

``collect_status`` merges the ``NNNNN.parquet`` of every finished shard (``_stats.json`` written, last)
into one ``STATUS_SCHEMA`` row per candidate uid, in input order, a later shard's row winning, and maps
img2dataset's status and error message to our reason codes (``_reason_for``). ``transient_uids`` and
``transient_in`` pick the rows that ``--retry-failed`` re-fetches: those with a reason in
``TRANSIENT_REASONS``; permanent failures (``dns_failed``, ``download_failed``, refusals, ...) never.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.core.schema import Reason
from rs5m.pipeline.download.fetch import DOWNLOAD_FAILED, FETCH_REASONS, TRANSIENT_REASONS

STATUS_FILE = "status.parquet"
DECODE_FAILED = Reason.DECODE_FAILED.value
IMAGE_FILTERED = Reason.IMAGE_FILTERED.value
DOWNLOAD_MISSING = Reason.DOWNLOAD_MISSING.value
STATUS_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("status", pa.string()),  # "success" | "failed"
        ("reason", pa.string()),  # null on success
        ("detail", pa.string()),
        ("key", pa.string()),  # img2dataset key = tar member name without extension
        ("shard", pa.string()),  # tar path (out_dir / NNNNN.tar); null unless success
        ("width", pa.int32()),  # as stored
        ("height", pa.int32()),
        ("original_width", pa.int32()),  # as downloaded
        ("original_height", pa.int32()),
        ("sha256", pa.string()),  # of the downloaded bytes
    ]
)

_I2D_COLUMNS = [
    "uid",
    "key",
    "status",
    "error_message",
    "width",
    "height",
    "original_width",
    "original_height",
    "sha256",
]
_I2D_EMPTY = pa.table(
    {
        c: pa.array([], pa.int32() if "width" in c or "height" in c else pa.string())
        for c in [*_I2D_COLUMNS, "shard"]
    }
)
_FILTER_MESSAGES = frozenset({"image too small", "image area too large", "aspect ratio too large"})
OOM_SHARD_COUNT = 5  # digits of img2dataset shard names (its oom_shard_count)


def status_path(out_dir: str | os.PathLike[str]) -> Path:
    """Where ``download_partition`` writes the normalised per-uid status table."""
    return Path(out_dir) / STATUS_FILE


def done_shard_ids(out_dir: Path) -> set[int]:
    """Ids of shards img2dataset finished: ``NNNNN_stats.json`` (written last) parses, parquet exists."""
    ids = set()
    for path in out_dir.glob("*_stats.json"):
        stem = path.name.removesuffix("_stats.json")
        if not stem.isdigit() or not (out_dir / f"{stem}.parquet").exists():
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        ids.add(int(stem))
    return ids


def _reason_for(status: str | None, message: str | None) -> tuple[str | None, str | None]:
    if status == "success":
        return None, None
    if status == "failed_to_download":
        head, _, tail = (message or "").partition(": ")
        return (head, tail) if head in FETCH_REASONS else (DOWNLOAD_FAILED, message)
    if status == "failed_to_resize":
        return (IMAGE_FILTERED if message in _FILTER_MESSAGES else DECODE_FAILED), message
    if status is None:
        return DOWNLOAD_MISSING, "img2dataset wrote no row for this uid"
    return DOWNLOAD_FAILED, f"{status}: {message}"


def collect_status(candidates: pa.Table, out_dir: Path) -> pa.Table:
    """One ``STATUS_SCHEMA`` row per candidate uid, in input order; a later shard's row wins."""
    tables = []
    for shard_id in sorted(done_shard_ids(out_dir)):
        name = f"{shard_id:0{OOM_SHARD_COUNT}d}"
        table = pq.read_table(out_dir / f"{name}.parquet", columns=_I2D_COLUMNS)
        tables.append(table.append_column("shard", pa.array([str(out_dir / f"{name}.tar")] * table.num_rows)))
    merged = pa.concat_tables(tables) if tables else _I2D_EMPTY
    last = {uid: i for i, uid in enumerate(merged.column("uid").to_pylist())}
    picked = merged.take(pa.array([last.get(u) for u in candidates.column("uid").to_pylist()], pa.int64()))
    statuses = picked.column("status").to_pylist()
    pairs = [
        _reason_for(s, m) for s, m in zip(statuses, picked.column("error_message").to_pylist(), strict=True)
    ]
    reasons = [r for r, _ in pairs]
    ok = pa.array([r is None for r in reasons], pa.bool_())
    columns = {
        "uid": candidates.column("uid"),
        "source": candidates.column("source"),
        "url": candidates.column("url"),
        "status": pa.array(["success" if r is None else "failed" for r in reasons], pa.string()),
        "reason": pa.array(reasons, pa.string()),
        "detail": pa.array([d for _, d in pairs], pa.string()),
        "key": picked.column("key"),
        "shard": pc.if_else(ok, picked.column("shard"), pa.scalar(None, pa.string())),
    }
    for name in ("width", "height", "original_width", "original_height", "sha256"):
        columns[name] = picked.column(name)
    return pa.table(columns).cast(STATUS_SCHEMA)


def transient_uids(path: Path) -> set[str]:
    """Uids whose latest status failed with a transient reason (the rows ``retry_failed`` refetches)."""
    table = pq.read_table(path, columns=["uid", "reason"])
    return {u for u, r in zip(*table.to_pydict().values(), strict=True) if r in TRANSIENT_REASONS}


def transient_in(status: pa.Table, shards: set[int], samples_per_shard: int) -> set[str]:
    """Uids of ``status`` rows that failed transiently in one of ``shards`` (by img2dataset's key)."""
    digits = math.ceil(math.log10(samples_per_shard))  # img2dataset: key = shard id, then the index
    found = set()
    for uid, reason, key in zip(*status.select(["uid", "reason", "key"]).to_pydict().values(), strict=True):
        if reason in TRANSIENT_REASONS and key and int(key[: len(key) - digits] or 0) in shards:
            found.add(uid)
    return found
