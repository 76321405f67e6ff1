"""The image server resets or stalls connections for a while, then recovers (issue #12).

The test serves the world's images itself (the config has no ``sample_server``) with a planted
``outage`` (``rs5m.sample.server``): the first ``N`` requests the server receives, whatever their path,
are answered with a TCP RST (``reset``) or not at all (``stall``, longer than the download timeout);
then it serves normally. Two ways a build gets over it:

- in-run retries: the config's ``download.retries`` (``N``, no back-off) outlasts the outage, so every
  broken request is retried within the build, which ends exactly like the reference;
- recorded, then ``--retry-failed``: with no in-run retries, each broken request leaves its row
  failed under a transient reason (``download_transient`` / ``download_timeout``) in a finished
  download shard; the build is stopped mid-download (SIGKILL) after those shards are done, and
  ``rs5m build --retry-failed`` must finish it, fetch exactly those rows again, and end like the
  reference.

Each test asserts the server really broke ``N`` requests. Short form: one reset outage each way.
Long form (``RS5M_FUZZ_LONG=1``): both modes, longer outages.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from rs5m.pipeline.download.img2ds import done_shard_ids
from rs5m.sample import serve_images
from rs5m.sample.server import ServedAddress

from . import LONG
from ._builds import VERSION, Outcome, World, assert_same, outcome, run_build
from .test_build_kill import (
    build_config,
    check_shard,
    download_shards,
    finish_build,
    kill_build_when,
    partitions,
    served_paths,
    slow_routes,
    start_build,
)

IN_RUN = [("reset", 3)] + ([("stall", 4), ("reset", 10)] if LONG else [])
RECORDED = [("reset", 4)] + ([("stall", 6), ("reset", 25)] if LONG else [])
REASON = {"reset": "download_transient", "stall": "download_timeout"}
PER_SHARD = 4


# Slow (make test-long): the short form's outage is tests/faults/test_retry_new_version.py (recorded,
# then retried in a new version); retries inside one run are unit-tested in tests/pipeline/download.
@pytest.mark.slow
@pytest.mark.parametrize(("mode", "n"), IN_RUN, ids=[f"{m}-{n}" for m, n in IN_RUN])
def test_outage_outlasted_by_in_run_retries(
    faults_world: World, reference: Outcome, prefect_harness: None, tmp_path: Path, mode: str, n: int
) -> None:
    # a row fails only if all its retries + 1 attempts are broken: impossible with n <= retries
    config = build_config(faults_world, f"outage-{mode}.yaml", retries=n, retry_backoff_s=0.0)
    with serve_images(
        faults_world.dir / "images", port=faults_world.port, outage={"mode": mode, "requests": n}
    ) as addr:
        run_build(config, tmp_path / "root")
    assert sum(addr.outage_log.values()) == n  # the server really broke n requests ...
    assert all(addr.request_log[p] > k for p, k in addr.outage_log.items())  # ... and each was retried
    assert_same(outcome(tmp_path / "root"), reference)


def _recorded(vdir: Path, addr: ServedAddress, reason: str) -> dict[str, list[dict[str, Any]]]:
    """Rows of finished download shards that failed under ``reason``, by URL path, for the broken paths."""
    found: dict[str, list[dict[str, Any]]] = {}
    for part in partitions(vdir):
        for shard in sorted(done_shard_ids(part)):
            table = pq.read_table(part / f"{shard:05d}.parquet", columns=["url", "error_message"])
            for row in table.to_pylist():
                for path in served_paths({row["url"]}, addr.base_url) & set(addr.outage_log):
                    if str(row["error_message"]).startswith(reason + ": "):
                        found.setdefault(path, []).append(row)
    return found


def _all_recorded(vdir: Path, addr: ServedAddress, reason: str) -> bool:
    """Every broken request left a failed row, under ``reason``, in a finished shard."""
    found = _recorded(vdir, addr, reason)
    return all(len(found.get(p, [])) >= k for p, k in addr.outage_log.items())


def _outage_recorded(vdir: Path, addr: ServedAddress, n: int, reason: str) -> bool:
    """Kill point: the outage is over and recorded, and some download shard is still half-written."""
    if sum(addr.outage_log.values()) < n or not download_shards(vdir)[1]:
        return False
    return _all_recorded(vdir, addr, reason)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "n"), RECORDED, ids=[f"{m}-{n}" for m, n in RECORDED])
def test_outage_recorded_then_retry_failed(
    faults_world: World, reference: Outcome, tmp_path: Path, mode: str, n: int
) -> None:
    download = {"retries": 0, "samples_per_shard": PER_SHARD, "timeout": 6.0, "total_timeout": 8.0}
    config = build_config(faults_world, f"outage-recorded-{mode}.yaml", **download)
    root, log = tmp_path / "root", tmp_path / "build.log"
    root.mkdir()
    vdir = root / "versions" / VERSION
    images = faults_world.dir / "images"
    outage = {"mode": mode, "requests": n}
    with serve_images(images, port=faults_world.port, routes=slow_routes(images), outage=outage) as addr:
        ready = functools.partial(_outage_recorded, vdir, addr, n, REASON[mode])
        kill_build_when(start_build(config, root, log), ready, log)
        assert not (vdir / "COMPLETE").exists()
        assert sum(addr.outage_log.values()) == n  # the server really broke n requests
        for part, shard in download_shards(vdir)[0]:
            check_shard(part, shard)
        assert _all_recorded(vdir, addr, REASON[mode])  # each one a failed row under its reason: none lost
        at_kill = Counter(addr.request_log)
    # The outage is over and the finishing run is not killed: images answer at once from a plain server.
    with serve_images(images, port=faults_world.port) as fast:
        finish_build(config, root, log, "--retry-failed")
    after = at_kill + Counter(fast.request_log)
    assert all(after[p] > at_kill[p] for p in addr.outage_log)  # the recorded rows were fetched again
    assert_same(outcome(root), reference)
