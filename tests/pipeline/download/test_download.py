"""download_partition against a local server: one status row per uid, reasons, guard, resume, retry.

img2dataset runs in-process (its first import costs ~10 s for torch); the rest takes a few seconds.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.config import DownloadConfig
from rs5m.core.stats import PartitionStats
from rs5m.pipeline.download.img2ds import download_partition, status_path

from .conftest import make_jpeg

# store_raw=False: these tests exercise img2dataset's own decoding (corrupt bytes -> decode_failed).
CFG = dict(
    allow_hosts=["127.0.0.1"], timeout=1.0, retries=0, threads=4, per_host_concurrency=4, store_raw=False
)
BLOCKED_IPS = {"10.0.0.1", "169.254.169.254", "10.1.2.3", "192.168.0.1"}


def _expected(server) -> dict[str, str | None]:
    """URL -> expected reason (None = success) for the main test partition."""
    port = server.port
    cases: dict[str, str | None] = {server.url(f"/img/{i}.jpg"): None for i in range(6)}
    cases |= {
        server.url("/redirect/7"): None,
        server.url("/optout/otherbot:noai"): None,
        server.url("/404"): "download_failed",
        server.url("/slow"): "download_timeout",
        server.url("/flaky/main"): "download_transient",
        server.url("/corrupt"): "decode_failed",
        server.url("/optout/noai"): "disallowed_by_header",
        server.url("/redirect/private"): "redirect_refused",
        server.url("/redirect/metadata"): "redirect_refused",
        "http://10.1.2.3/x.jpg": "refused_host",
        "http://192.168.0.1/x.jpg": "refused_host",
        f"http://2130706433:{port}/img/1.jpg": "refused_host",
        f"http://[::ffff:127.0.0.1]:{port}/img/1.jpg": "refused_host",
        f"http://evil@127.0.0.1:{port}/img/1.jpg": "refused_url",
        "file:///etc/passwd": "refused_url",
    }
    return cases


def _write_candidates(path: Path, urls: list[str]) -> Path:
    n = len(urls)
    table = pa.table(
        {
            "uid": [f"laion2b-{i:04d}" for i in range(n)],
            "source": ["laion2b"] * n,
            "url": urls,
            "caption": [f"satellite image {i}" for i in range(n)],
            "width": pa.array([None] * n, pa.int32()),
            "height": pa.array([None] * n, pa.int32()),
            "extras": ["{}"] * n,
            "keywords": [["satellite"]] * n,
        }
    )
    pq.write_table(table, path)
    return path


def _run(tmp: Path, urls: list[str], **overrides) -> tuple[PartitionStats, pa.Table]:
    cands = tmp / "candidates.parquet"
    if not cands.exists():
        _write_candidates(cands, urls)
    cfg = DownloadConfig(**{**CFG, **overrides.pop("cfg", {})})
    stats = download_partition(
        cands,
        tmp / "images",
        tmp / "_stats" / "00000.json",
        cfg,
        source="laion2b",
        partition="00000",
        **overrides,
    )
    return stats, pq.read_table(status_path(tmp / "images"))


@pytest.fixture(scope="module")
def main_run(server, tmp_path_factory):
    """The main partition downloaded once; connection attempts recorded."""
    tmp = tmp_path_factory.mktemp("main")
    with pytest.MonkeyPatch.context() as mp:
        import socket

        seen: list[str] = []
        original = socket.create_connection
        mp.setattr(socket, "create_connection", lambda a, *r, **k: seen.append(a[0]) or original(a, *r, **k))
        stats, status = _run(tmp, list(_expected(server)))
    return tmp, stats, status, seen


def test_every_uid_gets_one_row_with_the_right_reason(server, main_run) -> None:
    _, stats, status, _ = main_run
    expected = _expected(server)
    rows = status.to_pylist()
    assert [r["uid"] for r in rows] == [f"laion2b-{i:04d}" for i in range(len(expected))]
    assert {r["url"]: r["reason"] for r in rows} == expected
    assert all((r["status"] == "success") == (r["reason"] is None) for r in rows)
    assert stats.stage == "download" and stats.n_in == len(expected)
    assert stats.n_out == sum(v is None for v in expected.values())
    assert stats.removed["refused_host"] == 4 and stats.removed["redirect_refused"] == 2


def test_no_connection_to_blocked_addresses(main_run) -> None:
    *_, seen = main_run
    assert seen and set(seen) == {"127.0.0.1"}
    assert not BLOCKED_IPS & set(seen)


def test_successes_are_in_the_tar_with_metadata(main_run) -> None:
    tmp, _, status, _ = main_run
    ok = [r for r in status.to_pylist() if r["status"] == "success"]
    with tarfile.open(ok[0]["shard"]) as tar:
        names = set(tar.getnames())
        meta = json.loads(tar.extractfile(f"{ok[0]['key']}.json").read())
    for row in ok:
        assert {f"{row['key']}.jpg", f"{row['key']}.txt", f"{row['key']}.json"} <= names
        assert row["width"] and row["height"] and len(row["sha256"]) == 64
    assert meta["uid"] == ok[0]["uid"] and meta["source"] == "laion2b"
    assert meta["caption"].startswith("satellite image")
    raw = pq.read_table(tmp / "images" / "00000.parquet")
    assert {"uid", "source", "caption", "status", "error_message"} <= set(raw.column_names)


def test_native_resolution_and_bytes_kept(server, main_run) -> None:
    _, _, status, _ = main_run
    row = next(r for r in status.to_pylist() if r["url"].endswith("/img/3.jpg"))
    with tarfile.open(row["shard"]) as tar:
        assert tar.extractfile(f"{row['key']}.jpg").read() == make_jpeg(3)
    assert (row["width"], row["height"]) == (43, 30)


def test_resume_returns_stats_without_network(server, main_run) -> None:
    tmp, stats, _, _ = main_run
    before = server.total()
    again, _ = _run(tmp, [])
    assert again == stats and server.total() == before


def test_shard_level_resume_skips_done_shards(server, tmp_path) -> None:
    urls = [server.url(f"/img/{i}.jpg") for i in range(5)]
    first, _ = _run(tmp_path, urls, cfg={"samples_per_shard": 2})
    (tmp_path / "_stats" / "00000.json").unlink()
    (tmp_path / "images" / "00002_stats.json").unlink()
    before = dict(server.counts)
    again, status = _run(tmp_path, urls, cfg={"samples_per_shard": 2})
    assert again.n_out == first.n_out == 5
    delta = sum(server.counts[k] - before.get(k, 0) for k in server.counts)
    assert delta == 1  # only the one row of shard 2
    assert status.num_rows == 5


def test_retry_failed_refetches_only_transient(server, tmp_path) -> None:
    urls = [server.url(p) for p in ("/img/1.jpg", "/404", "/slow", "/flaky/retry", "/corrupt")]
    first, _ = _run(tmp_path, urls)
    assert first.removed == {
        "download_failed": 1,
        "download_timeout": 1,
        "download_transient": 1,
        "decode_failed": 1,
    }
    before = dict(server.counts)
    second, status = _run(tmp_path, urls, retry_failed=True)
    delta = {k: v - before.get(k, 0) for k, v in server.counts.items() if v != before.get(k, 0)}
    assert delta == {"/slow": 1, "/flaky/retry": 1}
    assert second.n_out == 2 and second.removed["download_timeout"] == 1
    assert second.extra["retry_shards"] == 1
    flaky = next(r for r in status.to_pylist() if r["url"].endswith("/flaky/retry"))
    assert flaky["status"] == "success" and flaky["shard"].endswith("00001.tar")


def test_loopback_refused_without_allowlist(server, tmp_path, connections) -> None:
    before = server.total()
    stats, status = _run(tmp_path, [server.url(f"/img/{i}.jpg") for i in range(3)], cfg={"allow_hosts": []})
    assert stats.n_out == 0 and stats.removed == {"refused_host": 3}
    assert set(status.column("reason").to_pylist()) == {"refused_host"}
    assert server.total() == before and connections == []


def test_empty_partition(tmp_path) -> None:
    stats, status = _run(tmp_path, [])
    assert (stats.n_in, stats.n_out, stats.removed) == (0, 0, {}) and status.num_rows == 0
