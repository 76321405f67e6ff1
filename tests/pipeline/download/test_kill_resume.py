"""A download killed mid-partition and rerun finishes with the same funnel, without re-fetching done shards.

The partition has three shards of four URLs on a 127.0.0.1 sample server that counts requests per path.
Shard 0's URLs answer at once; the later shards' URLs sleep ``SLOW_S`` first, so the child process is
reliably between "shard 0's ``_stats.json`` exists" and "the partition's stats file exists" when it is
SIGKILLed. The rerun (in this process) must skip shard 0, fetch the rest, and produce the same status
table as an undisturbed run on a server without sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rs5m.config import DownloadConfig
from rs5m.core.stats import read_done
from rs5m.pipeline.download.img2ds import done_shard_ids, download_partition, status_path
from rs5m.sample import serve_images

from .conftest import make_jpeg

SLOW_S = 2.0
PER_SHARD = 4
N = 3 * PER_SHARD
MISSING = {2, 10}  # one 404 in the finished shard, one in a later shard
CFG = dict(timeout=10.0, total_timeout=20.0, retries=0, threads=4, per_host_concurrency=4)
CFG |= dict(samples_per_shard=PER_SHARD)
COMPARED = [
    "uid",
    "status",
    "reason",
    "key",
    "width",
    "height",
    "original_width",
    "original_height",
    "sha256",
]
CHILD = """
import json, sys
from rs5m.config import DownloadConfig
from rs5m.pipeline.download.img2ds import download_partition
cand, out, stats, cfg = sys.argv[1:5]
download_partition(cand, out, stats, DownloadConfig(**json.loads(cfg)), source="laion2b", partition="p0")
"""


def _images(root: Path) -> Path:
    (root / "img").mkdir(parents=True)
    for i in range(N):
        if i not in MISSING:
            (root / "img" / f"{i}.jpg").write_bytes(make_jpeg(i))
    return root


def _candidates(path: Path, base_url: str) -> Path:
    table = pa.table(
        {
            "uid": [f"laion2b-{i:04d}" for i in range(N)],
            "source": ["laion2b"] * N,
            "url": [f"{base_url}/img/{i}.jpg" for i in range(N)],
            "caption": [f"satellite image {i}" for i in range(N)],
        }
    )
    pq.write_table(table, path)
    return path


def _cfg(base_url: str) -> DownloadConfig:
    return DownloadConfig(allow_hosts=[base_url.removeprefix("http://")], **CFG)


def _compared(out: Path) -> list[dict[str, object]]:
    return pq.read_table(status_path(out), columns=COMPARED).to_pylist()


def _wait_for_first_shard(out: Path, proc: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    """Return once shard 0 is done (its ``_stats.json`` parses and its parquet exists)."""
    deadline = time.monotonic() + limit_s
    while not (out.is_dir() and 0 in done_shard_ids(out)):
        assert proc.poll() is None, f"the download child exited early ({proc.returncode})"
        assert time.monotonic() < deadline, f"shard 0 was not done within {limit_s}s"
        time.sleep(0.02)


def test_killed_download_resumes_without_refetching(tmp_path: Path) -> None:
    root = _images(tmp_path / "images")
    slow = {f"/img/{i}.jpg": {"sleep": SLOW_S} for i in range(PER_SHARD, N)}

    # the undisturbed reference run, on a server without sleeps
    with serve_images(root) as ref_addr:
        ref_out = tmp_path / "ref"
        cand = _candidates(tmp_path / "ref.parquet", ref_addr.base_url)
        ref = download_partition(
            cand, ref_out, tmp_path / "ref.json", _cfg(ref_addr.base_url), source="laion2b", partition="p0"
        )

    with serve_images(root, routes=slow) as addr:
        out, stats = tmp_path / "out", tmp_path / "stats" / "p0.json"
        cand = _candidates(tmp_path / "cand.parquet", addr.base_url)
        cfg = _cfg(addr.base_url)
        args = [str(cand), str(out), str(stats), cfg.model_dump_json()]
        env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
        proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env)
        try:
            _wait_for_first_shard(out, proc)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert not stats.exists() and read_done(stats) is None  # killed before the partition finished
        assert done_shard_ids(out) == {0}  # a shard cut off mid-download is not marked done
        first = dict(addr.request_log)

        result = download_partition(cand, out, stats, cfg, source="laion2b", partition="p0")

    assert done_shard_ids(out) == {0, 1, 2}
    assert read_done(stats) == result
    assert (result.n_in, result.n_out, result.removed) == (ref.n_in, ref.n_out, ref.removed)
    assert result.removed == {"download_failed": len(MISSING)}
    rows = _compared(out)
    assert [r["uid"] for r in rows] == [f"laion2b-{i:04d}" for i in range(N)]  # every uid once, in order
    assert rows == _compared(ref_out)
    shard = pq.read_table(out / "00001.parquet", columns=["uid"]).column("uid").to_pylist()
    assert sorted(shard) == [f"laion2b-{i:04d}" for i in range(PER_SHARD, 2 * PER_SHARD)]
    for i in range(PER_SHARD):  # the finished shard: fetched once in all, never by the rerun
        assert addr.request_log[f"/img/{i}.jpg"] == first[f"/img/{i}.jpg"] == 1, i
    assert all(addr.request_log[f"/img/{i}.jpg"] >= 1 for i in range(PER_SHARD, N))
    assert json.loads((out / "00000_stats.json").read_text())["count"] == PER_SHARD
