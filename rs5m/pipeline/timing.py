"""What each stage actually took: one small timing record per partition that did work, and the rates.

``timed(stage, layout, source, partition, fn)`` runs a partition stage; when the partition was not done
before (no done marker), it writes ``<stage>/_timing/<source>/<partition>.json`` with the wall and CPU
seconds, start and end (epoch seconds: a timeline), the rows in and out and the host. A reused partition
writes nothing, so a rerun never turns real timings into near-zero ones. ``actual_rates`` sums them per
stage for the forecast-vs-actual table; ``timeline`` lists them in start order.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

from rs5m.core.io import write_json
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats

# forecast stage labels (rs5m.pipeline.forecast) per recorded stage name
LABELS = {
    StageName.INGEST: "ingest+keyword",
    StageName.DOWNLOAD: "download",
    StageName.VALIDITY: "validity",
    StageName.OUTLIER_SCORE: "outlier_score",
}


def timed(
    stage: StageName, layout: VersionLayout, source: str, partition: str, fn: Callable[[], PartitionStats]
) -> PartitionStats:
    """Run ``fn`` (one partition of ``stage``); record its timing when it did the work."""
    fresh = not layout.stats(stage, source, partition).exists()
    started, wall, cpu = time.time(), time.perf_counter(), time.process_time()
    stats = fn()
    if fresh:
        own = PartitionStats.read(layout.stats(stage, source, partition))  # the stage's own counts
        record = {
            "stage": stage.value, "source": source, "partition": partition, "n_in": own.n_in,
            "n_out": own.n_out, "wall_s": round(time.perf_counter() - wall, 4),
            "cpu_s": round(time.process_time() - cpu, 4), "host": socket.gethostname(),
            "start": round(started, 3), "end": round(time.time(), 3),
        }  # fmt: skip
        write_json(layout.side(stage, "timing", source, partition, ".json"), record)
    return stats


def actual_rates(layout: VersionLayout) -> dict[str, dict[str, float]]:
    """Per forecast stage label: total work (rows in), wall seconds summed over partitions, and the rate
    per partition-second (what one worker did)."""
    out: dict[str, dict[str, float]] = {}
    for stage, label in LABELS.items():
        recs = [json.loads(p.read_text(encoding="utf-8")) for p in layout.sides(stage, "timing", ".json")]
        if not recs:
            continue
        work, wall = sum(r["n_in"] for r in recs), sum(r["wall_s"] for r in recs)
        out[label] = {"work": work, "wall_s": wall, "cpu_s": sum(r["cpu_s"] for r in recs),
                      "rate": work / wall if wall else 0.0, "partitions": len(recs)}  # fmt: skip
    return out


def timeline(layout: VersionLayout) -> list[dict]:
    """Every timing record of the version (each partition of each stage that did work), by start time."""
    recs = [
        json.loads(p.read_text(encoding="utf-8")) for s in LABELS for p in layout.sides(s, "timing", ".json")
    ]
    return sorted(recs, key=lambda r: r.get("start", 0))
