"""PUB11 meta-captions (YFCC lat/lon and date, CC3M machine tags, RedCaps date) and place names.

Input: the parquet partitions of one PUB11 stage (default the keyword candidates, which carry
``extras``). Output per partition, under ``<version_dir>/rs3/`` (``rs5m.core.layout``)::

    meta_caption/<source>/<part>.parquet        uid, source, family, meta_caption, meta (JSON), places, geo
    meta_caption/_stats/<source>/<part>.json    subset "geometa", stage "meta_caption": n_in rows, n_out
                                                with a meta-caption, removed["no_metadata"] (nothing dropped)
    places/_stats/<source>/<part>.json          subset "geometa", stage "places": n_out rows naming a
                                                place, removed["no_place"]; extra: counts by kind, country

The places stats file is written last (the done marker). Counts under subset "geometa" are coverage,
not removals: the PUB11 funnel (subset "pub11") is untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rs5m.config import BuildConfig, RS3Config
from rs5m.core.io import write_parquet
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.rs3 import metacaption
from rs5m.rs3.places import count_places, place_matcher
from rs5m.rs3.stage import GEO_COLUMNS

SUBSET = "geometa"
META_SOURCES = ("yfcc15m", "cc3m", "redcaps")
_COLS = [
    ("uid", pa.string()),
    ("source", pa.string()),
    ("family", pa.string()),
    ("meta_caption", pa.string()),
]
PUB11_META_SCHEMA = pa.schema(
    [pa.field(n, t) for n, t in _COLS]
    + [pa.field("meta", pa.string()), pa.field("places", pa.list_(pa.string()))]
    + [pa.field(n, t) for n, t in GEO_COLUMNS]
)


def _paths(version_dir: str | Path, source: str, part: str) -> tuple[Path, Path, Path]:
    layout = VersionLayout.of(version_dir)
    return (
        layout.output(StageName.META_CAPTION, source, part),
        layout.stats(StageName.META_CAPTION, source, part),
        layout.stats(StageName.PLACES, source, part),
    )


def pub11_partitions(version_dir: str | Path, stage: str = "keyword") -> list[tuple[str, str]]:
    """``(source, part)`` of every parquet partition of a PUB11 stage folder."""
    return [(src, part) for src, part, _ in VersionLayout.of(version_dir).outputs(StageName(stage))]


def _extras(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _meta_captions(rows: list[dict], source: str, cfg: RS3Config) -> dict[str, metacaption.MetaCaption]:
    if source not in META_SOURCES:
        return {}
    items = []
    for row in rows:
        got = metacaption.pub11_fields(
            source, _extras(row.get("extras")), cfg.cc3m_min_prob, cfg.cc3m_max_tags
        )
        if got is not None:
            items.append((row["uid"], *got))
    return {uid: m for (uid, *_), m in zip(items, metacaption.finish(items, cfg.seed), strict=True)}


def pub11_meta_partition(
    version_dir: str | Path, source: str, part: str, cfg: RS3Config
) -> list[PartitionStats]:
    """Meta-captions and place names for one PUB11 partition; returns [meta_caption, places] stats."""
    out_path, meta_stats_path, places_stats_path = _paths(version_dir, source, part)
    done = read_done(places_stats_path)
    meta = read_done(meta_stats_path) if done is not None else None
    if done is not None and meta is not None:
        return [meta, done]
    layout = VersionLayout.of(version_dir)
    rows = pq.read_table(layout.output(StageName(cfg.pub11_stage), source, part)).to_pylist()
    metas = _meta_captions(rows, source, cfg)
    matcher = place_matcher(cfg.place_min_population)
    found = [matcher.find(row.get("caption") or "") for row in rows]
    records = []
    for row, matches in zip(rows, found, strict=True):
        meta = metas.get(row["uid"])
        geo = meta.geo if meta else {}
        records.append(
            {"uid": row["uid"], "source": source, "family": meta.family if meta else None}
            | {
                "meta_caption": meta.text if meta else None,
                "meta": metacaption.to_json(meta) if meta else None,
            }
            | {"places": [m.text for m in matches]}
            | {n: geo.get(n) for n, _ in GEO_COLUMNS}
        )
    write_parquet(out_path, pa.Table.from_pylist(records, schema=PUB11_META_SCHEMA))
    meta_stats = PartitionStats(
        StageName.META_CAPTION.value, source, part, SUBSET, n_in=len(rows), n_out=len(metas)
    )
    meta_stats.remove("no_metadata", len(rows) - len(metas))
    meta_stats.extra = {"by_family": _family_counts(metas)}
    meta_stats.write(meta_stats_path)
    summary = count_places(found)
    with_place = summary["texts_with_place"]["yes"]
    places = PartitionStats(StageName.PLACES.value, source, part, SUBSET, n_in=len(rows), n_out=with_place)
    places.remove("no_place", len(rows) - with_place)
    places.extra = {
        "by_kind": dict(summary["by_kind"]),
        "by_country": dict(summary["by_country"]),
        "top_places": dict(summary["by_name"].most_common(100)),
    }
    places.write(places_stats_path)
    return [meta_stats, places]


def _family_counts(metas: dict[str, metacaption.MetaCaption]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in metas.values():
        counts[m.family] = counts.get(m.family, 0) + 1
    return counts


def run(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """Geo metadata of one PUB11 partition (``rs5m.pipeline.registry``); the places stats are written too."""
    if cfg.rs3 is None:
        raise ValueError("the build config has no rs3 section")
    return pub11_meta_partition(layout.dir, source, partition, cfg.rs3)[0]
