"""img2dataset adapter: one candidate partition in, webdataset shards plus one status row per uid out.

Contract of ``download_partition``:
- Input: a candidate parquet with at least ``uid, source, url, caption`` (uids unique).
- Output in ``out_dir``: img2dataset's own ``NNNNN.tar`` / ``NNNNN.parquet`` / ``NNNNN_stats.json`` per
  shard (``uid``, ``source``, ``caption`` carried in the parquet and each sample's ``.json``), then
  ``status.parquet`` (``STATUS_SCHEMA``, exactly one row per input uid, input order), then, last,
  the ``PartitionStats`` file at ``stats_path`` (stage ``download``, ``n_out`` = successes, every
  failure counted under its reason).
- Resume: a valid stats file means done; it is returned without network access. Otherwise shards
  whose img2dataset ``_stats.json`` exists are skipped and the rest are (re)downloaded.
- ``retry_failed=True`` re-downloads, once, the rows that an earlier run left with a transient reason
  (``download_timeout``, ``download_transient``) into new shards; a later shard's row wins. Earlier
  = every shard of a finished partition, or the shards an interrupted run finished before a resumed
  run completes the partition (so a build stopped during a server outage and rerun with
  ``--retry-failed`` retries those rows too); a partition started afresh gets no second pass.
- img2dataset runs in this process (its ``Downloader`` on a thread pool, no process pool, so it works
  inside daemonic Dask workers); every fetch goes through ``rs5m.pipeline.download.fetch`` and
  ``rs5m.pipeline.download.netguard``.
- Politeness: URLs are interleaved by host before sharding so concurrent threads meet different
  hosts, and at most ``per_host_concurrency`` requests per host name are in flight within one
  partition run (partitions running at once on a cluster each have their own cap). There is no
  ``processes`` knob: parallelism across processes and machines comes from one Dask task per partition.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.config import DownloadConfig
from rs5m.core.io import write_parquet
from rs5m.core.schema import Reason, StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.download.fetch import (
    DOWNLOAD_FAILED,
    FETCH_REASONS,
    TRANSIENT_REASONS,
    GuardedFetcher,
    GuardedTimeout,
    install_hook,
)

STAGE = StageName.DOWNLOAD.value
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
_COLUMNS = ["url", "caption", "uid", "source"]
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
_OOM_SHARD_COUNT = 5


def status_path(out_dir: str | os.PathLike[str]) -> Path:
    """Where ``download_partition`` writes the normalised per-uid status table."""
    return Path(out_dir) / STATUS_FILE


def interleave_by_host(table: pa.Table) -> pa.Table:
    """Reorder rows round-robin over URL hosts (stable), so neighbouring rows hit different hosts."""
    first_seen: dict[str, int] = {}
    seen: Counter[str] = Counter()
    keys = []
    for i, url in enumerate(table.column("url").to_pylist()):
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        keys.append((seen[host], first_seen.setdefault(host, len(first_seen)), i))
        seen[host] += 1
    return table.take(pa.array([k[2] for k in sorted(keys)], pa.int64()))


def _make_downloader(cfg: DownloadConfig, out_dir: Path, fetcher: GuardedFetcher):
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # its import would otherwise call out
    from img2dataset.downloader import Downloader
    from img2dataset.resizer import Resizer
    from img2dataset.writer import WebDatasetSampleWriter

    install_hook()
    resizer = Resizer(
        image_size=cfg.image_size,
        resize_mode=cfg.resize_mode,
        resize_only_if_bigger=cfg.resize_only_if_bigger,
        encode_quality=cfg.encode_quality,
        encode_format=cfg.encode_format,
        skip_reencode=cfg.skip_reencode,
        disable_all_reencoding=cfg.store_raw,
        min_image_size=cfg.min_image_size,
    )
    return Downloader(
        sample_writer_class=WebDatasetSampleWriter,
        resizer=resizer,
        thread_count=cfg.threads,
        save_caption=True,
        extract_exif=cfg.extract_exif,
        output_folder=str(out_dir),
        column_list=_COLUMNS,
        timeout=GuardedTimeout(cfg.timeout, fetcher),
        number_sample_per_shard=cfg.samples_per_shard,
        oom_shard_count=_OOM_SHARD_COUNT,
        compute_hash="sha256",
        verify_hash_type=None,
        encode_format=cfg.encode_format,
        retries=cfg.retries,
        user_agent_token=cfg.user_agent_token,
        disallowed_header_directives=cfg.disallowed_header_directives or None,
    )


def _run_shards(rows: pa.Table, out_dir: Path, cfg: DownloadConfig, first_id: int) -> None:
    """Download ``rows`` as shards ``first_id, first_id + 1, ...``; skip shards already done."""
    n_shards = math.ceil(rows.num_rows / cfg.samples_per_shard)
    done = done_shard_ids(out_dir)
    todo = [i for i in range(first_id, first_id + n_shards) if i not in done]
    if not todo:
        return
    downloader = _make_downloader(cfg, out_dir, GuardedFetcher(cfg))
    tmp = out_dir / "_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for shard_id in todo:
        start = (shard_id - first_id) * cfg.samples_per_shard
        part = rows.slice(start, cfg.samples_per_shard).select(_COLUMNS)
        arrow_file = tmp / f"{shard_id}.arrow"
        with pa.OSFile(str(arrow_file), "wb") as sink, pa.ipc.new_file(sink, part.schema) as writer:
            writer.write_table(part)
        downloader.download_shard((shard_id, str(arrow_file)))  # raises on shard-level failure
    shutil.rmtree(tmp, ignore_errors=True)


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
        name = f"{shard_id:0{_OOM_SHARD_COUNT}d}"
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


def _read_candidates(path: str | os.PathLike[str]) -> pa.Table:
    table = pq.read_table(path, columns=["uid", "source", "url", "caption"])
    table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
    if len(set(table.column("uid").to_pylist())) != table.num_rows:
        raise ValueError(f"{path}: duplicate uids in a candidate partition")
    return table


def _finish(
    candidates: pa.Table,
    out_dir: Path,
    stats_path: str | os.PathLike[str],
    cfg: DownloadConfig,
    *,
    source: str,
    partition: str,
) -> PartitionStats:
    status = collect_status(candidates, out_dir)
    write_parquet(status_path(out_dir), status)
    reasons = Counter(r for r in status.column("reason").to_pylist() if r is not None)
    stats = PartitionStats(stage=STAGE, source=source, partition=partition, n_in=candidates.num_rows)
    stats.n_out = candidates.num_rows - sum(reasons.values())
    for reason, n in sorted(reasons.items()):
        stats.remove(reason, n)
    shards = sorted(done_shard_ids(out_dir))
    n_main = math.ceil(candidates.num_rows / cfg.samples_per_shard)
    stats.extra = {"shards": shards, "retry_shards": sum(1 for s in shards if s >= n_main)}
    stats.write(stats_path)
    return stats


def download_partition(
    candidates_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    stats_path: str | os.PathLike[str],
    cfg: DownloadConfig,
    *,
    source: str,
    partition: str,
    retry_failed: bool = False,
) -> PartitionStats:
    """Download one candidate partition (see the module docstring for the full contract)."""
    done = read_done(stats_path)
    if done is not None and not retry_failed:
        return done
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    candidates = _read_candidates(candidates_path)
    earlier = done_shard_ids(out)  # shards of earlier runs: their transient failures are what a retry retries
    if done is None:
        _run_shards(interleave_by_host(candidates), out, cfg, first_id=0)
    retry = _transient_in(collect_status(candidates, out), earlier, cfg) if retry_failed else set()
    if done is not None:
        if not retry:
            return done
        Path(stats_path).unlink()  # the partition is not done while its statuses change
    if retry:
        rows = candidates.filter(pc.is_in(candidates.column("uid"), pa.array(sorted(retry))))
        first_id = max(done_shard_ids(out), default=-1) + 1
        _run_shards(interleave_by_host(rows), out, cfg, first_id=first_id)
    return _finish(candidates, out, stats_path, cfg, source=source, partition=partition)


def _transient_in(status: pa.Table, shards: set[int], cfg: DownloadConfig) -> set[str]:
    """Uids of ``status`` rows that failed transiently in one of ``shards`` (by img2dataset's key)."""
    digits = math.ceil(math.log10(cfg.samples_per_shard))  # img2dataset: key = shard id, then the index
    found = set()
    for uid, reason, key in zip(*status.select(["uid", "reason", "key"]).to_pydict().values(), strict=True):
        if reason in TRANSIENT_REASONS and key and int(key[: len(key) - digits] or 0) in shards:
            found.add(uid)
    return found
