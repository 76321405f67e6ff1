"""RS3 stage functions the flow calls: plan partitions, read (+ meta-captions), caption (GPU).

On disk, under ``<version_dir>/rs3/`` (paths from ``rs5m.core.layout``)::

    read/_plan/<source>/<part>.json      dataset root and the keys of one partition (written once)
    read/<source>/<part>.parquet         every listed item: status/detail, metadata, meta-caption, geo
    images/ben/<part>/<patch>.png        BigEarthNet RGB composites (the image the captioner and shards use)
    caption/<source>/<part>.parquet      captioned items: uid, source, name, image_path, meta_caption,
                                         blip2_caption, caption, rule, provenance (JSON), meta (JSON), geo
    read/_stats/<source>/<part>.json     subset "rs3", stage "read":    n_in listed, n_out readable
    caption/_stats/<source>/<part>.json  subset "rs3", stage "caption": n_in readable, n_out captioned

A stats file is written last and marks its partition done; a done partition is skipped on rerun.
Final caption: FMoW and BigEarthNet = meta-caption + " " + BLIP-2 caption; MillionAID = BLIP-2 caption.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from rs5m.config import BuildConfig, RS3Config
from rs5m.config.rs3 import RS3SourceConfig
from rs5m.core.io import write_json, write_parquet
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.rs3 import metacaption
from rs5m.rs3.readers import ReadItem, RS3Reason, list_items, read_item

SUBSET = "rs3"
GEO_COLUMNS = [("lat", pa.float64()), ("lon", pa.float64()), ("country", pa.string())]
GEO_COLUMNS += [("city", pa.string()), ("utm_zone", pa.string()), ("month", pa.int32())]
_TEXT = ["uid", "source", "name", "key", "image_path", "status", "detail", "metadata", "meta_caption", "meta"]
READ_SCHEMA = pa.schema([pa.field(c, pa.string()) for c in _TEXT] + [pa.field(n, t) for n, t in GEO_COLUMNS])
_CAP = [
    "uid",
    "source",
    "name",
    "image_path",
    "meta_caption",
    "blip2_caption",
    "caption",
    "rule",
    "provenance",
]
CAPTION_SCHEMA = pa.schema(
    [pa.field(c, pa.string()) for c in [*_CAP, "meta"]] + [pa.field(n, t) for n, t in GEO_COLUMNS]
)


def rs3_paths(version_dir: str | Path, kind: str, source: str, part: str) -> Path:
    """Path of one partition's ``plan`` (.json), ``read``/``captions`` (.parquet) or stats file."""
    layout = VersionLayout.of(version_dir)
    if kind == "plan":
        return layout.side(StageName.RS3_READ, "plan", source, part, ".json")
    stage = StageName.RS3_READ if kind.startswith("read") else StageName.RS3_CAPTION
    return (
        layout.stats(stage, source, part) if kind.endswith("_stats") else layout.output(stage, source, part)
    )


def plan_partitions(version_dir: str | Path, cfg: RS3Config) -> list[tuple[str, str]]:
    """List each source's items and split them into partitions; an existing plan is kept as it is."""
    out = []
    for src in cfg.sources:
        existing = sorted(rs3_paths(version_dir, "plan", src.name, "x").parent.glob("*.json"))  # kept as is
        if existing:
            out += [(src.name, p.stem) for p in existing]
            continue
        keys = list_items(src.name, src.root, src.patterns)[: src.limit]
        for i in range(0, len(keys), src.files_per_partition):
            part = f"{i // src.files_per_partition:05d}"
            chunk = {"root": src.root, "keys": keys[i : i + src.files_per_partition]}
            write_json(rs3_paths(version_dir, "plan", src.name, part), chunk)
            out.append((src.name, part))
    return out


def planned_partitions(version_dir: str | Path) -> list[tuple[str, str]]:
    """``(source, part)`` of every planned RS3 partition, sorted."""
    plans = VersionLayout.of(version_dir).sides(StageName.RS3_READ, "plan", ".json")
    return sorted((p.parent.name, p.stem) for p in plans)


def _source(cfg: RS3Config, name: str) -> RS3SourceConfig:
    return next(s for s in cfg.sources if s.name == name)


def _read_rows(items: list[ReadItem], metas: dict[str, metacaption.MetaCaption]) -> pa.Table:
    rows = []
    for it in items:
        meta = metas.get(it.uid)
        geo = meta.geo if meta else {}
        row = {c: getattr(it, c) for c in ("uid", "source", "name", "key", "image_path", "status", "detail")}
        row |= {"metadata": it.metadata, "meta_caption": meta.text if meta else None}
        row["meta"] = metacaption.to_json(meta) if meta else None
        rows.append(row | {n: geo.get(n) for n, _ in GEO_COLUMNS})
    return pa.Table.from_pylist(rows, schema=READ_SCHEMA)


def read_partition(version_dir: str | Path, source: str, part: str, cfg: RS3Config) -> PartitionStats:
    """Read one planned partition: check files, parse metadata, render meta-captions; record failures."""
    stats_path = rs3_paths(version_dir, "read_stats", source, part)
    done = read_done(stats_path)
    if done is not None:
        return done
    plan = json.loads(rs3_paths(version_dir, "plan", source, part).read_text(encoding="utf-8"))
    rgb_dir = VersionLayout.of(version_dir).rs3_images_dir / source / part
    items = [read_item(source, plan["root"], key, rgb_dir, cfg.ben_scale_max) for key in plan["keys"]]
    ok = [it for it in items if it.status == "ok"]
    located = [(it.uid, it.family, it.fields, it.geo) for it in ok if it.family]
    metas = {m_uid: m for (m_uid, *_), m in zip(located, metacaption.finish(located, cfg.seed), strict=True)}
    write_parquet(rs3_paths(version_dir, "read", source, part), _read_rows(items, metas))
    stats = PartitionStats(StageName.RS3_READ.value, source, part, SUBSET, n_in=len(items), n_out=len(ok))
    for it in items:
        if it.status != "ok":
            stats.remove(it.status)
    stats.write(stats_path)
    return stats


def load_rgb(path: str, size: int = 448) -> Image.Image:
    """Decode an image as RGB; large JPEGs decode at reduced scale (never below ``size``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as img:
            img.draft("RGB", (size, size))
            return img.convert("RGB")


def _caption_row(row: dict[str, Any], blip: str, rule: str, provenance: dict[str, Any]) -> dict[str, Any]:
    meta = row.get("meta_caption")
    caption = f"{meta} {blip}" if meta else blip
    keep = ("uid", "source", "name", "image_path", "meta", *[n for n, _ in GEO_COLUMNS])
    return {k: row.get(k) for k in keep} | {
        "meta_caption": meta,
        "blip2_caption": blip,
        "caption": caption,
        "rule": rule,
        "provenance": json.dumps(provenance, ensure_ascii=False, sort_keys=True),
    }


def _caption_batch(captioner, batch: list[dict[str, Any]], stats: PartitionStats, detail: dict) -> list[dict]:
    images, rows = [], []
    for row in batch:
        try:
            images.append(load_rgb(row["image_path"]))
            rows.append(row)
        except Exception as exc:  # a file that read before but fails now (changed, I/O error): per sample
            stats.remove(RS3Reason.CAPTION_FAILED.value)
            detail[row["uid"]] = f"{type(exc).__name__}: {exc}"[:300]
    if not rows:
        return []
    out = []
    for row, res in zip(rows, captioner.caption([r["uid"] for r in rows], images), strict=True):
        if res.status != "ok":
            stats.remove(res.status)
            continue
        out.append(_caption_row(row, res.caption, res.rule, res.provenance))
    return out


def caption_partition(version_dir: str | Path, source: str, part: str, cfg: RS3Config) -> PartitionStats:
    """Caption every readable item of one partition (BLIP-2 + re-rank + rotation pick); GPU stage."""
    from rs5m.ml.captioner import get_captioner  # torch/transformers only where captioning runs

    stats_path = rs3_paths(version_dir, "caption_stats", source, part)
    done = read_done(stats_path)
    if done is not None:
        return done
    table = pq.read_table(rs3_paths(version_dir, "read", source, part))
    ready = [r for r in table.to_pylist() if r["status"] == "ok"]
    stats = PartitionStats(StageName.RS3_CAPTION.value, source, part, SUBSET, n_in=len(ready))
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    if ready:
        if cfg.torch_threads:  # several single-threaded workers per machine: avoid oversubscription
            import torch

            torch.set_num_threads(cfg.torch_threads)
        captioner = get_captioner(cfg)
        size = cfg.captioner.batch_size
        for i in range(0, len(ready), size):
            rows += _caption_batch(captioner, ready[i : i + size], stats, failed)
    write_parquet(
        rs3_paths(version_dir, "captions", source, part), pa.Table.from_pylist(rows, schema=CAPTION_SCHEMA)
    )
    stats.n_out = len(rows)
    stats.extra = {"failed": dict(list(failed.items())[:50])} if failed else {}
    stats.write(stats_path)
    return stats


def stats_dict(stats: PartitionStats) -> dict[str, Any]:
    """A stats object as a plain dict (what Prefect tasks return)."""
    return asdict(stats)


def _rs3(cfg: BuildConfig) -> RS3Config:
    if cfg.rs3 is None:
        raise ValueError("the build config has no rs3 section")
    return cfg.rs3


def run_read(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """The RS3 read stage over one planned partition (``rs5m.pipeline.registry``)."""
    return read_partition(layout.dir, source, partition, _rs3(cfg))


def run_caption(layout: VersionLayout, source: str, partition: str, cfg: BuildConfig) -> PartitionStats:
    """The RS3 caption stage over one read partition (``rs5m.pipeline.registry``)."""
    return caption_partition(layout.dir, source, partition, _rs3(cfg))
