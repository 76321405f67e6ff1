"""RS3 packaging of a version: captioned FMoW / BigEarthNet / MillionAID items ->
``rs5m.pipeline.package.packer``.

Input: the caption partitions the RS3 stage wrote (``<version>/rs3/captions/<source>/<part>.parquet``,
schema ``rs5m.rs3.stage.CAPTION_SCHEMA``) whose caption stats file (the done marker) exists. Every
captioned row is kept (RS3 has no dedup or outlier stage). Partitions are streamed one at a time and
images read one at a time: memory is bounded by one caption partition and one image.

Per row, ``iter_rs3_samples`` yields a ``Sample`` or a ``Dropped``:
- ``Sample.uid`` is the RS5M-style ``name`` (``fmow_<stem>``, ``ben_<patch>``, ``millionaid_<stem>``),
  so the ``rs5m`` layout's ``.img_name`` is ``<name>.<real ext>`` as in the released RS5M; the pipeline
  uid is kept as ``meta["rs3_uid"]``. A row without a name, or whose name is ambiguous (held by several
  rows or equal to some uid), is written under its uid instead.
- ``meta["dup_cluster"]`` is the pipeline uid (every RS3 item is its own cluster), so the train/val split
  is ``assign_split(uid)`` whatever name the sample is written under.
- The image is the file's bytes, format detected from them (``Sample.ext``; the packer detects again).
  Dropped: ``image_missing`` (no such file, or a relative path leaving its allowed folder),
  ``unreadable_image`` (an I/O error; undecodable bytes are removed by the packer under the same code),
  ``missing_caption`` (an empty caption).

Image paths (``image_path`` as the RS3 reader stored it): a version-owned image
(``.../rs3/images/<source>/<part>/<file>``, the BigEarthNet RGB PNGs) is looked up in this version's
own ``rs3/images`` first, so a moved or seeded version finds its copy; otherwise an absolute path is used
as is, and a relative path only inside the version folder or the partition's dataset root (its plan),
never through ``..``.

Outputs, resume rule and image-format policy are ``rs5m.pipeline.package.packer``'s with subset ``rs3``:
shards
``package/<layout>/rs3-{train,val}-NNNN.tar`` beside the PUB11 shards (neither subset's packaging
deletes the other's; each layout's ``manifest.json`` lists both subsets), stats
``package/_stats/<source>/rs3.json``. Do not package two subsets of one version concurrently (each
rewrites the shared manifest).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from rs5m.config import BuildConfig, PackageConfig
from rs5m.core.layout import VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.package.packer import (
    MISSING_CAPTION,
    UNREADABLE,
    Dropped,
    image_format,
    package_subset,
    subset_status,
)
from rs5m.pipeline.package.packer import summary as packer_summary
from rs5m.rs3.stage import GEO_COLUMNS, planned_partitions, rs3_paths
from rs5m.shards import Sample, assign_split
from rs5m.shards.manifest import file_sha256

__all__ = ["IMAGE_MISSING", "RULE_RS3", "SUBSET", "iter_rs3_samples", "package_rs3", "resolve_image"]

SUBSET = "rs3"
RULE_RS3 = "rs3.captioned"  # every captioned RS3 item is kept
IMAGE_MISSING = "image_missing"
_GEO = [n for n, _ in GEO_COLUMNS]
_COLUMNS = ["uid", "source", "name", "image_path", "caption", "meta_caption", "blip2_caption", "rule",
            "provenance", "meta", *_GEO]  # fmt: skip


def caption_partitions(vdir: Path) -> list[tuple[str, str]]:
    """``(source, part)`` of every finished caption partition (parquet + done stats), sorted."""
    parts = [(s, p) for s, p, _ in VersionLayout.of(vdir).outputs(StageName.RS3_CAPTION)]
    return [(s, p) for s, p in parts if read_done(rs3_paths(vdir, "caption_stats", s, p)) is not None]


def _plan_root(vdir: Path, source: str, part: str) -> Path | None:
    """The dataset root the partition was read from (its plan), or ``None`` when unknown."""
    try:
        root = json.loads(rs3_paths(vdir, "plan", source, part).read_text(encoding="utf-8"))["root"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(root) if isinstance(root, str) and root else None


def _under(base: Path, parts: Sequence[str]) -> Path | None:
    """``base`` joined with relative ``parts``; ``None`` when they could leave ``base`` (``..``, absolute)."""
    if not parts or any(p in ("..", "") or p.startswith("/") for p in parts):
        return None
    return base.joinpath(*parts)


def resolve_image(vdir: Path, image_path: str | None, roots: Sequence[Path] = ()) -> Path | None:
    """The file holding one RS3 image, by the lookup order of the module docstring; ``None`` if none exists.

    ``roots``: the dataset roots a relative path may lie in (besides ``vdir``). Never returns a path
    reached through ``..`` from a relative ``image_path``.
    """
    if not image_path:
        return None
    p = Path(image_path)
    parts = p.parts
    candidates: list[Path | None] = []
    images = VersionLayout.of(vdir).rs3_images_dir
    if len(parts) >= 5 and parts[-5:-3] == images.parts[-2:]:  # version-owned: <source>/<part>/<file>
        candidates.append(_under(images, parts[-3:]))
    if p.is_absolute():
        candidates.append(p)
    elif ".." not in parts:
        candidates.append(_under(vdir, parts))
        for root in roots:
            candidates.append(_under(root, parts))
            if not root.is_absolute() and parts[: len(root.parts)] == root.parts:
                candidates.append(p)  # stored relative to the working folder, inside the dataset root
    return next((c for c in candidates if c is not None and c.is_file()), None)


def _ambiguous_names(files: list[Path]) -> set[str]:
    """Names that cannot identify one sample: held by several rows, or equal to some row's uid."""
    if not files:
        return set()
    sql = (
        "WITH r AS (SELECT uid, name FROM read_parquet(?)) "
        "SELECT name FROM r WHERE name IS NOT NULL GROUP BY name HAVING count(*) > 1 "
        "UNION SELECT name FROM r WHERE name IN (SELECT uid FROM r)"
    )
    with duckdb.connect() as con:
        return {r[0] for r in con.execute(sql, [[str(f) for f in files]]).fetchall()}


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return {"unparsed": text}


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    provenance = _loads(row["provenance"])
    prov = {**provenance, "kind": "rs3_captioner"} if isinstance(provenance, dict) else provenance
    return {"subset": SUBSET, "rs3_uid": row["uid"], "dup_cluster": row["uid"], "name": row["name"],
            "meta_caption": row["meta_caption"], "blip2_caption": row["blip2_caption"], "rule": row["rule"],
            "caption_provenance": prov, "meta_caption_info": _loads(row["meta"]),
            **{n: row[n] for n in _GEO}}  # fmt: skip


def _sample_name(row: dict[str, Any], ambiguous: set[str]) -> str:
    name = row["name"]
    if not name or name in ambiguous or "/" in name or "\\" in name or name.startswith("."):
        return row["uid"]
    return name


def iter_rs3_samples(
    vdir: Path, partitions: list[tuple[str, str]] | None = None
) -> Iterator[Sample | Dropped]:
    """Every captioned row of ``partitions`` (default: all finished ones) as a ``Sample`` or ``Dropped``.

    Order: partitions sorted by (source, part), rows in file order: the output is deterministic.
    """
    parts = caption_partitions(vdir) if partitions is None else partitions
    files = [rs3_paths(vdir, "captions", s, p) for s, p in parts]
    ambiguous = _ambiguous_names(files)
    for (source, part), path in zip(parts, files, strict=True):
        roots = [r for r in (_plan_root(vdir, source, part),) if r is not None]
        for row in pq.read_table(path, columns=_COLUMNS).to_pylist():
            if not row["caption"]:
                yield Dropped(row["uid"], source, MISSING_CAPTION)
                continue
            file = resolve_image(vdir, row["image_path"], roots)
            if file is None:
                yield Dropped(row["uid"], source, IMAGE_MISSING)
                continue
            try:
                data = file.read_bytes()
            except OSError:
                yield Dropped(row["uid"], source, UNREADABLE)
                continue
            name = _sample_name(row, ambiguous)
            yield Sample(name, source, row["caption"], data, image_format(data) or "", _meta(row))


def _fingerprint(cfg: PackageConfig, files: list[Path]) -> dict[str, Any]:
    """What a finished packaging depended on: keep rule, packaging config, caption files' sha256."""
    conf = json.dumps(cfg.model_dump(exclude={"fsync"}), sort_keys=True).encode()
    return {
        "keep_rule": RULE_RS3,
        "config_sha256": hashlib.sha256(conf).hexdigest()[:16],
        "inputs": {f"{p.parent.name}/{p.name}": file_sha256(p) for p in files},
    }


def _split_counts(files: list[Path], cfg: PackageConfig) -> dict[str, int]:
    """Captioned rows per split (before any drop), for ``cfg.n_shards``."""
    counts = {"train": 0, "val": 0}
    for f in files:
        uids = pq.read_table(f, columns=["uid"]).column("uid")
        n_val = int(assign_split(uids, cfg.val_fraction, cfg.seed).sum())
        counts["val"] += n_val
        counts["train"] += len(uids) - n_val
    return counts


def package_rs3(version_dir: str | Path, cfg: PackageConfig, version: str | None = None) -> dict[str, Any]:
    """Package the captioned RS3 items of a version into ``<version>/package/<layout>/rs3-*.tar``.

    Nothing planned (no RS3 source, or no item listed): returns an empty summary and writes nothing.
    Raises ``ValueError`` when partitions are planned but none is captioned yet, or when the version is
    marked complete and not already packaged, intact, with the same config and caption files (then:
    skipped; the intactness check hashes the rs3 shards once, see ``rs5m.pipeline.package.packer``).
    Returns ``rs5m.pipeline.package.packer.package_subset``'s summary (subset ``rs3``, keep_rule
    ``rs3.captioned``,
    skipped, n_in, n_out, removed, splits, layouts, stats) plus ``not_captioned``: planned partitions
    without finished captions (not packaged; a later call after they finish repackages).
    """
    vdir = Path(version_dir)
    layout = VersionLayout.of(vdir)
    out_root = layout.package_dir()
    parts = caption_partitions(vdir)
    planned = planned_partitions(vdir)
    not_captioned = [f"{s}/{p}" for s, p in sorted(set(planned) - set(parts))]
    if not parts:
        if planned:
            raise ValueError(
                f"version {vdir.name!r}: no RS3 caption partition finished yet ({len(planned)} planned)"
            )
        return {"subset": SUBSET, "skipped": True, "removed": {}, "layouts": {}, "keep_rule": RULE_RS3,
                "n_in": 0, "n_out": 0, "splits": {"train": 0, "val": 0}, "stats": [],
                "not_captioned": []}  # fmt: skip
    files = [rs3_paths(vdir, "captions", s, p) for s, p in parts]
    fp = _fingerprint(cfg, files)
    done, why = subset_status(out_root, SUBSET, cfg.layouts, fp)
    if done is not None:
        return packer_summary(out_root, SUBSET, cfg.layouts, done, skipped=True) | {
            "not_captioned": not_captioned
        }
    if layout.complete_marker.exists():
        raise ValueError(f"version {vdir.name!r} is complete and immutable, and its rs3 packaging "
                         f"cannot be reused ({why}); package it as a new version")  # fmt: skip
    n_total = _split_counts(files, cfg) if cfg.n_shards else None
    res = package_subset(
        iter_rs3_samples(vdir, parts), out_root, SUBSET, cfg,
        version=version or vdir.name, fingerprint=fp, sources=sorted({s for s, _ in parts}), n_total=n_total,
    )  # fmt: skip
    return res | {"not_captioned": not_captioned}


def run(layout: VersionLayout, sources: list[str], cfg: BuildConfig) -> list[PartitionStats]:
    """The RS3 packaging barrier (``rs5m.pipeline.registry``): one stats row per packaged source."""
    result = package_rs3(layout.dir, cfg.package, version=layout.name)
    return [PartitionStats(**row) for row in result["stats"]]
