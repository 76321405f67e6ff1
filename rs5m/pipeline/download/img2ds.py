"""img2dataset adapter: one candidate partition in, webdataset shards plus one status row per uid out.

Contract of ``download_partition``:
- Input: a candidate parquet with at least ``uid, source, url, caption`` (uids unique).
- Output in ``out_dir``: img2dataset's own ``NNNNN.tar`` / ``NNNNN.parquet`` / ``NNNNN_stats.json`` per
  shard (``uid``, ``source``, ``caption`` carried in the parquet and each sample's ``.json``), then
  ``status.parquet`` (``STATUS_SCHEMA``, exactly one row per input uid, input order), then, last,
  the ``PartitionStats`` file at ``stats_path`` (stage ``download``, ``n_out`` = successes, every
  failure counted under its reason; ``extra["hosts"]``: per-host outcome counts of the
  ``host_stats_top_n`` most-failing hosts plus an ``(other)`` bucket, see ``hosts.py``).
- Resume: a valid stats file means done; it is returned without network access. Otherwise shards
  whose img2dataset ``_stats.json`` exists are skipped and the rest are (re)downloaded.
- ``retry_failed=True`` re-downloads, once, the rows that an earlier run left with a transient reason
  (``download_timeout``, ``download_transient``, ``dns_transient``; never ``dns_failed``,
  ``download_failed`` or another permanent one) into new shards; a later shard's row wins. Earlier
  = every shard of a finished partition, or the shards an interrupted run finished before a resumed
  run completes the partition (so a build stopped during a server outage and rerun with
  ``--retry-failed`` retries those rows too); a partition started afresh gets no second pass.
- img2dataset runs in this process (its ``Downloader`` on a thread pool, no process pool, so it works
  inside daemonic Dask workers); every fetch goes through ``rs5m.pipeline.download.fetch`` and
  ``rs5m.pipeline.download.netguard``, its names resolved by ``resolver`` (default: the process's
  shared ``CachingResolver`` for ``cfg``, so partitions run one after another in a worker share it);
  the host names of each shard are looked up ahead of its fetches (``dns_prefetch``), and the URLs of
  names still unanswered after ``dns_settle_s`` are fetched last within their shard.
- The per-uid status table is built in ``rs5m.pipeline.download.status`` (re-exported here).
- Politeness: URLs are interleaved by host before sharding so concurrent threads meet different
  hosts, and at most ``per_host_concurrency`` requests per host name are in flight within one
  partition run (partitions running at once on a cluster each have their own cap). There is no
  ``processes`` knob: parallelism across processes and machines comes from one Dask task per partition.
"""

from __future__ import annotations

import math
import os
import shutil
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rs5m.config import DownloadConfig
from rs5m.core.io import write_parquet
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.download.fetch import GuardedFetcher, GuardedTimeout, HostResolver, install_hook
from rs5m.pipeline.download.hosts import host_outcomes, url_host
from rs5m.pipeline.download.status import (
    OOM_SHARD_COUNT,
    STATUS_SCHEMA,
    collect_status,
    done_shard_ids,
    status_path,
    transient_in,
    transient_uids,
)

__all__ = ["STATUS_SCHEMA", "done_shard_ids", "download_partition", "status_path", "transient_uids"]
STAGE = StageName.DOWNLOAD.value
_COLUMNS = ["url", "caption", "uid", "source"]


def interleave_by_host(table: pa.Table) -> pa.Table:
    """Reorder rows round-robin over URL hosts (stable), so neighbouring rows hit different hosts."""
    first_seen: dict[str, int] = {}
    seen: Counter[str] = Counter()
    keys = []
    for i, url in enumerate(table.column("url").to_pylist()):
        host = url_host(url)
        keys.append((seen[host], first_seen.setdefault(host, len(first_seen)), i))
        seen[host] += 1
    return table.take(pa.array([k[2] for k in sorted(keys)], pa.int64()))


def slow_hosts_last(table: pa.Table, slow: set[str]) -> pa.Table:
    """Move the rows whose URL host is in ``slow`` to the end, keeping the order within both groups."""
    late = [url_host(url) in slow for url in table.column("url").to_pylist()]
    order = [i for i, x in enumerate(late) if not x] + [i for i, x in enumerate(late) if x]
    return table.take(pa.array(order, pa.int64()))


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
        oom_shard_count=OOM_SHARD_COUNT,
        compute_hash="sha256",
        verify_hash_type=None,
        encode_format=cfg.encode_format,
        retries=cfg.retries,
        user_agent_token=cfg.user_agent_token,
        disallowed_header_directives=cfg.disallowed_header_directives or None,
    )


def _run_shards(
    rows: pa.Table, out_dir: Path, cfg: DownloadConfig, first_id: int, resolver: HostResolver | None
) -> None:
    """Download ``rows`` as shards ``first_id, first_id + 1, ...``; skip shards already done."""
    n_shards = math.ceil(rows.num_rows / cfg.samples_per_shard)
    done = done_shard_ids(out_dir)
    todo = [i for i in range(first_id, first_id + n_shards) if i not in done]
    if not todo:
        return
    fetcher = GuardedFetcher(cfg, resolver)
    downloader = _make_downloader(cfg, out_dir, fetcher)
    tmp = out_dir / "_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for shard_id in todo:
        start = (shard_id - first_id) * cfg.samples_per_shard
        part = rows.slice(start, cfg.samples_per_shard).select(_COLUMNS)
        slow = fetcher.prefetch(part.column("url").to_pylist())  # lookups run ahead of the fetch threads
        if slow:
            part = slow_hosts_last(part, slow)
        arrow_file = tmp / f"{shard_id}.arrow"
        with pa.OSFile(str(arrow_file), "wb") as sink, pa.ipc.new_file(sink, part.schema) as writer:
            writer.write_table(part)
        downloader.download_shard((shard_id, str(arrow_file)))  # raises on shard-level failure
    shutil.rmtree(tmp, ignore_errors=True)


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
    stats.extra = {
        "shards": shards,
        "retry_shards": sum(1 for s in shards if s >= n_main),
        "hosts": host_outcomes(status, cfg.host_stats_top_n),
    }
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
    resolver: HostResolver | None = None,
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
        _run_shards(interleave_by_host(candidates), out, cfg, 0, resolver)
    retry = set()
    if retry_failed:
        retry = transient_in(collect_status(candidates, out), earlier, cfg.samples_per_shard)
    if done is not None:
        if not retry:
            return done
        Path(stats_path).unlink()  # the partition is not done while its statuses change
    if retry:
        rows = candidates.filter(pc.is_in(candidates.column("uid"), pa.array(sorted(retry))))
        first_id = max(done_shard_ids(out), default=-1) + 1
        _run_shards(interleave_by_host(rows), out, cfg, first_id, resolver)
    return _finish(candidates, out, stats_path, cfg, source=source, partition=partition)
