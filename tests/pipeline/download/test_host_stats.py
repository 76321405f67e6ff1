"""A partition with dead and flaky hosts: DNS reasons per uid, ``--retry-failed`` skips permanent
failures, per-host link-rot counts in the stats file, the lineage's ``download_hosts`` table and
``rs5m funnel --hosts``.

Names are answered by ``FakeDNS``; the only connections go to the test server on 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.config import DownloadConfig
from rs5m.core.stats import PartitionStats
from rs5m.lineage import store as lineage
from rs5m.pipeline.download.hosts import OTHER_HOSTS, host_outcomes
from rs5m.pipeline.download.img2ds import download_partition, status_path
from rs5m.pipeline.download.resolver import CachingResolver

from .conftest import FakeDNS

GOOD, FLAKY = "good.localhost", "again.localhost"
CFG = dict(allow_hosts=[GOOD, FLAKY], timeout=2.0, retries=0, threads=4, per_host_concurrency=4)


def _partition(server) -> dict[str, str | None]:
    """URL -> expected reason of the first run."""
    good = f"http://{GOOD}:{server.port}"
    cases: dict[str, str | None] = {f"{good}/img/{i}.jpg": None for i in range(3)}
    cases |= {f"http://nx.localhost:{server.port}/img/{i}.jpg": "dns_failed" for i in range(4)}
    cases |= {f"http://{FLAKY}:{server.port}/img/{i}.jpg": "dns_transient" for i in range(2)}
    cases |= {f"{good}/status/410": "download_failed", f"{good}/status/503": "download_transient"}
    return cases


def _write(path: Path, urls: list[str]) -> Path:
    n = len(urls)
    table = pa.table(
        {
            "uid": [f"laion2b-{i:04d}" for i in range(n)],
            "source": ["laion2b"] * n,
            "url": urls,
            "caption": ["satellite image"] * n,
        }
    )
    pq.write_table(table, path)
    return path


def _run(tmp: Path, dns: FakeDNS, **kw: bool) -> tuple[PartitionStats, dict[str, str | None]]:
    cfg = DownloadConfig(**CFG)
    stats = download_partition(
        tmp / "cands.parquet",
        tmp / "images",
        tmp / "v1" / "download" / "_stats" / "laion2b" / "00000.json",
        cfg,
        source="laion2b",
        partition="00000",
        resolver=CachingResolver.from_settings(cfg, dns),  # a fresh process: an empty cache
        **kw,
    )
    status = pq.read_table(status_path(tmp / "images")).to_pylist()
    return stats, {r["url"]: r["reason"] for r in status}


@pytest.fixture(scope="module")
def runs(server, tmp_path_factory):
    """First run (again.localhost answers EAI_AGAIN), then ``retry_failed`` once it answers."""
    tmp = tmp_path_factory.mktemp("dns")
    expected = _partition(server)
    _write(tmp / "cands.parquet", list(expected))
    dns = FakeDNS({GOOD: ["127.0.0.1"], FLAKY: socket.EAI_AGAIN})
    first = _run(tmp, dns)
    calls_first = dict(dns.calls)
    dns.answers[FLAKY] = ["127.0.0.1"]
    before = dict(server.counts)
    second = _run(tmp, dns, retry_failed=True)
    served = {k: v - before.get(k, 0) for k, v in server.counts.items() if v != before.get(k, 0)}
    return tmp, expected, first, second, calls_first, dict(dns.calls), served


def test_dns_reasons_per_uid(runs) -> None:
    _, expected, (stats, reasons), *_ = runs
    assert reasons == expected
    assert stats.removed == {
        "dns_failed": 4,
        "dns_transient": 2,
        "download_failed": 1,
        "download_transient": 1,
    }


def test_retry_failed_refetches_transient_only(runs) -> None:
    tmp, expected, _, (stats, reasons), calls_first, calls_all, served = runs
    assert calls_first == {GOOD: 1, "nx.localhost": 1, FLAKY: 1}  # one lookup per host name
    assert calls_all["nx.localhost"] == 1  # the permanent failures were not retried: no new lookup
    assert served == {"/img/0.jpg": 1, "/img/1.jpg": 1, "/status/503": 1}  # again.localhost's two + the 503
    assert reasons == expected | {u: None for u in expected if FLAKY in u}
    assert stats.removed == {"dns_failed": 4, "download_failed": 1, "download_transient": 1}


def test_host_counts_in_the_stats_file(runs) -> None:
    tmp, _, (first, _), (second, _), *_ = runs
    assert first.extra["hosts"] == {
        "nx.localhost": {"dns_failed": 4},
        GOOD: {"download_failed": 1, "download_transient": 1, "success": 3},
        FLAKY: {"dns_transient": 2},
    }
    assert second.extra["hosts"][FLAKY] == {"success": 2}
    on_disk = json.loads((tmp / "v1" / "download" / "_stats" / "laion2b" / "00000.json").read_text())
    assert on_disk["extra"]["hosts"] == second.extra["hosts"]


def test_top_n_and_other_bucket_add_up() -> None:
    rows = [("http://a.example/x", "dns_failed")] * 5
    rows += [("http://B.example:81/x", "download_failed")] * 3 + [("http://b.example/y", None)]
    rows += [("https://c.example/x", "download_transient")] + [("http://c.example/y", None)] * 4
    rows += [("http://d.example/x", None)] * 2 + [("file:///x", "refused_url")]
    status = pa.table({"url": [u for u, _ in rows], "reason": [r for _, r in rows]})
    assert host_outcomes(status, top_n=2) == {
        "a.example": {"dns_failed": 5},  # the most failures first
        "b.example": {"download_failed": 3, "success": 1},  # host names are case-folded, ports dropped
        OTHER_HOSTS: {"download_transient": 1, "refused_url": 1, "success": 6},  # c, d and "(none)"
    }
    assert host_outcomes(status, top_n=0) == {
        OTHER_HOSTS: {
            "dns_failed": 5,
            "download_failed": 3,
            "download_transient": 1,
            "refused_url": 1,
            "success": 7,
        }
    }
    assert len(host_outcomes(status, top_n=100)) == 5 and host_outcomes(status.slice(0, 0), top_n=5) == {}


def test_lineage_table_and_funnel_hosts(runs, capsys) -> None:
    import cli.main

    tmp, *_ = runs
    root = tmp / "root"
    db = root / "lineage.duckdb"
    lineage.set_version_status(db, "v1", "running", "h", str(root))
    lineage.load_version(db, "v1", tmp / "v1")
    lineage.load_version(db, "v1", tmp / "v1")  # a reload replaces the rows
    with lineage.connect(db, read_only=True) as con:
        table = con.execute(
            "SELECT source, host, reason, n FROM download_hosts WHERE version = 'v1' "
            "ORDER BY host, reason NULLS FIRST"
        ).fetchall()
        rows = lineage.host_rows(con, "v1", top=1)
    assert table == [
        ("laion2b", FLAKY, None, 2),
        ("laion2b", GOOD, None, 3),
        ("laion2b", GOOD, "download_failed", 1),
        ("laion2b", GOOD, "download_transient", 1),
        ("laion2b", "nx.localhost", "dns_failed", 4),
    ]
    assert rows == [
        {"host": "nx.localhost", "urls": 4, "failed": 4, "failed %": 100.0, "reasons": "dns_failed 4"}
    ]
    assert cli.main.main(["funnel", "--root", str(root), "--hosts", "--top", "2", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "host,urls,failed,failed %,reasons",
        "nx.localhost,4,4,100.0,dns_failed 4",
        f'{GOOD},5,2,40.0,"download_failed 1, download_transient 1"',
    ]
