"""The keyword stage: the RS keyword filter over one ingested partition (rules in ``matcher``)."""

from __future__ import annotations

from rs5m.config import BuildConfig
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats
from rs5m.pipeline.keywords.matcher import filter_partition


def run(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """Keyword-filter one ingested partition into its candidates (the keyword stage's output)."""
    return filter_partition(
        layout.output(StageName.INGEST, source, partition),
        layout.output(StageName.KEYWORD, source, partition),
        layout.stats(StageName.KEYWORD, source, partition),
        cfg=cfg.keyword,
        source=source,
        partition=partition,
    )
