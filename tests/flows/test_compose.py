"""Composition from the registry: batches of partitions and segments of stages (placement)."""

from __future__ import annotations

from flows._compose import batches, segments
from rs5m.config import BuildConfig, SourceInput
from rs5m.core.schema import StageName
from rs5m.pipeline import registry


def _cfg(**dask: object) -> BuildConfig:
    return BuildConfig(sources=[SourceInput(name="cc12m", files=["x"])], dask=dask)


def test_batches_auto_and_fixed() -> None:
    parts = [("cc12m", f"p{i}") for i in range(100)]
    auto = batches(parts, _cfg(n_workers=4))  # ~4 tasks per worker
    assert {len(b) for b in auto[:-1]} == {7} and sum(len(b) for b in auto) == 100  # ceil(100 / 16) each
    assert [len(b) for b in batches(parts, _cfg(partitions_per_task=30))] == [30, 30, 30, 10]
    assert batches(parts[:3], _cfg(n_workers=8)) == [[p] for p in parts[:3]]


def test_segments_split_cpu_from_gpu_stages() -> None:
    groups = segments(registry.partition_stages("pub11"))
    names = [[s.name for s in g] for g in groups]
    assert names == [
        [StageName.INGEST, StageName.DOWNLOAD, StageName.VALIDITY],
        [StageName.OUTLIER_SCORE],
    ]
    assert all(s.gpu is None for s in groups[0]) and groups[1][0].gpu == "scoring.dask_gpu"
