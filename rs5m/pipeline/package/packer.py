"""Packaging core: samples of one subset become train/val webdataset shards in every layout.

Contract of ``package_subset`` (PUB11 through ``rs5m.pipeline.package.pub11``; RS3 captions can feed it the
same way):
- Input: an iterable of ``Sample`` (and ``Dropped`` for rows the reader could not turn into one).
  ``sample.meta["dup_cluster"]`` (else the uid) is the split key, so an image and its duplicates
  share a split; the split is ``rs5m.shards.assign_split`` with ``cfg.val_fraction`` and ``cfg.seed``.
- Image format comes from the bytes, never from a file name or ``Sample.ext`` (img2dataset stores raw
  bytes under ``.jpg``). The ``rs5m`` layout keeps the original bytes, real extension in ``img_name``.
  The ``open_clip`` layout keeps jpg/png/webp bytes as they are; any other format (gif, bmp, tiff, ...)
  is converted to RGB (``rs5m.pipeline.validity.check.to_rgb``, first frame) and re-encoded to PNG,
  lossless, except
  already-lossy codecs (JPEG 2000, HEIF, AVIF), which become JPEG quality 95.
- A sample is written to every layout or to none: one that cannot be decoded or converted is removed as
  ``unreadable_image`` everywhere, so all layouts hold the same samples.
- Outputs under ``<out_root>``: ``<layout>/<subset>-{train,val}-NNNN.tar``, then ``manifest.json`` per
  layout (its ``subsets.<subset>`` entry records keep rule, fingerprint and samples per source), then,
  last, ``_stats/<source>/<subset>.json`` (stage ``package``; ``n_in`` = kept rows, ``n_out`` =
  written, ``removed`` by reason): the done markers. ``subset_status`` / ``subset_done`` find a
  finished packaging with the same fingerprint that is intact: every manifest and shard entry matches
  its checksum, and every shard of the subset its recorded size and sha256 (so resuming reads the
  subset's shards once). Anything else is repackaged: ``package_subset`` first deletes whatever an
  earlier run left for the subset. A corrupt shard entry of another subset is deleted and that
  subset's record dropped from the manifest, so its own packaging redoes it.
- Memory: one sample at a time (plus what the caller's iterator holds).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from rs5m.config import PackageConfig
from rs5m.core.io import warn_corrupt
from rs5m.core.layout import stats_glob, stats_in
from rs5m.core.schema import Reason, StageName
from rs5m.core.stats import PartitionStats, read_done
from rs5m.pipeline.validity.check import to_rgb
from rs5m.shards import Sample, ShardWriter, assign_split, write_manifest
from rs5m.shards.layouts import OPEN_CLIP_IMAGE_EXTS
from rs5m.shards.manifest import ENTRY_DIR, MANIFEST_NAME, corrupt_entries, read_manifest, verify_subset

STAGE = StageName.PACKAGE.value
UNREADABLE = Reason.UNREADABLE_IMAGE.value
MISSING_CAPTION = Reason.MISSING_CAPTION.value
REENCODE_JPEG_QUALITY = 95
IMAGE_POLICY = (
    "rs5m: original bytes, real format in img_name; open_clip: jpg/png/webp as downloaded, other formats "
    "re-encoded to PNG (lossless sources) or JPEG q95 (lossy sources) after RGB conversion"
)
_MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
          (b"II*\x00", "tif"), (b"MM\x00*", "tif"))  # fmt: skip
_PIL_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
            "TIFF": "tif", "JPEG2000": "jp2", "ICO": "ico", "PPM": "ppm", "HEIF": "heic",
            "AVIF": "avif"}  # fmt: skip
_LOSSY = frozenset({"jp2", "heic", "avif"})


@dataclass(frozen=True)
class Dropped:
    """A kept row that cannot be packaged, with the reason counted in the stats."""

    uid: str
    source: str
    reason: str


def image_format(data: bytes) -> str | None:
    """The image format of ``data`` as a file extension (``jpg``, ``png``, ``webp``, ``gif``, ...).

    Magic bytes first, PIL's identification otherwise; ``None`` when the bytes are no known image.
    """
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
    except Exception:  # PIL raises many types on unknown bytes; all mean "not an image"
        return None
    return _PIL_EXT.get(fmt, fmt.lower() or None)


def open_clip_image(data: bytes, ext: str) -> tuple[bytes, str]:
    """``(bytes, ext)`` for the open_clip layout: as they are when jpg/png/webp, else re-encoded.

    Raises ``ValueError`` when the bytes cannot be decoded.
    """
    if ext in OPEN_CLIP_IMAGE_EXTS:
        return data, ext
    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = to_rgb(img)
            buf = io.BytesIO()
            if ext in _LOSSY:
                rgb.save(buf, "JPEG", quality=REENCODE_JPEG_QUALITY)
            else:
                rgb.save(buf, "PNG")
    except Exception as exc:  # decoder failures are properties of these bytes
        raise ValueError(f"cannot re-encode {ext} image: {type(exc).__name__}: {exc}") from exc
    return buf.getvalue(), "jpg" if ext in _LOSSY else "png"


def split_of(sample: Sample, cfg: PackageConfig) -> str:
    """``"val"`` or ``"train"`` for one sample, by its dup cluster (else uid)."""
    key = sample.meta.get("dup_cluster") or sample.uid
    return "val" if assign_split([key], cfg.val_fraction, cfg.seed)[0] else "train"


class _Packer:
    """Writers per (layout, split) and stats per source for one subset being packaged."""

    def __init__(self, out_root: Path, subset: str, cfg: PackageConfig, n_total: dict[str, int]) -> None:
        self.out_root, self.subset, self.cfg, self.n_total = out_root, subset, cfg, n_total
        self.writers: dict[tuple[str, str], ShardWriter] = {}
        self.stats: dict[str, PartitionStats] = {}

    def stat(self, source: str) -> PartitionStats:
        """The stats of ``source``, created on first use."""
        if source not in self.stats:
            self.stats[source] = PartitionStats(
                STAGE, source, self.subset, subset=self.subset, extra={"train": 0, "val": 0}
            )
        return self.stats[source]

    def add(self, item: Sample | Dropped) -> None:
        """Count ``item``; write it to every layout, or to none with the reason it was removed."""
        st = self.stat(item.source)
        st.n_in += 1
        if isinstance(item, Dropped):
            st.remove(item.reason)
            return
        ext = image_format(item.image)
        if ext is None:
            st.remove(UNREADABLE)
            return
        split = split_of(item, self.cfg)
        meta = {**item.meta, "split": split, "image_format": ext}
        variants = {}
        for layout in self.cfg.layouts:
            data, out_ext = item.image, ext
            if layout == "open_clip":
                try:
                    data, out_ext = open_clip_image(item.image, ext)
                except ValueError:
                    st.remove(UNREADABLE)
                    return
            variants[layout] = replace(item, image=data, ext=out_ext, meta=meta)
        for layout, sample in variants.items():
            self.writer(layout, split).write(sample)
        st.n_out += 1
        st.extra[split] += 1

    def writer(self, layout: str, split: str) -> ShardWriter:
        """The shard writer of (layout, split), opened on first use (no empty val writer)."""
        if (layout, split) not in self.writers:
            out = self.out_root / layout
            self.writers[(layout, split)] = ShardWriter(
                out, self.subset, split, layout, self.cfg, n_total=self.n_total.get(split)
            )
        return self.writers[(layout, split)]

    def close(self, ok: bool) -> None:
        """Close every writer (``ok``) or delete their shards in progress."""
        for w in self.writers.values():
            w.close() if ok else w.abort()


def _stats_path(out_root: Path, subset: str, source: str) -> Path:
    return stats_in(out_root, source, subset)


def subset_status(
    out_root: Path, subset: str, layouts: list[str], fp: dict[str, Any]
) -> tuple[list[PartitionStats] | None, str]:
    """``(stats, "")`` of a finished, intact packaging of ``subset`` with fingerprint ``fp``, else
    ``(None, why not)``. Intact (module contract) is checked last: ``verify_subset`` hashes each shard
    of the subset once. A corrupt packaging is logged as a warning naming its first problems."""
    sources: list[str] = []
    for layout in layouts:
        manifest = out_root / layout / MANIFEST_NAME
        try:
            entry = read_manifest(manifest.parent).get("subsets", {}).get(subset)
        except ValueError as exc:
            if manifest.exists():
                warn_corrupt(manifest, f"{exc}; the {subset} packaging is not reused")
            return None, str(exc)
        if not entry:
            return None, f"{manifest} has no record of subset {subset}"
        if entry.get("fingerprint") != fp:
            return None, f"{manifest}: subset {subset} was packaged from other inputs or config"
        sources = sorted(entry["sources"])
    stats = [read_done(_stats_path(out_root, subset, s)) for s in sources]
    if any(s is None for s in stats):
        return None, f"a package stats file of subset {subset} is missing or corrupt"
    for layout in layouts:
        if problems := verify_subset(out_root / layout, subset):
            why = f"{subset} shards in {out_root / layout} are corrupt: " + "; ".join(problems[:3])
            warn_corrupt(out_root / layout / MANIFEST_NAME, f"{why}; the {subset} packaging is not reused")
            return None, why
    return [s for s in stats if s is not None], ""


def subset_done(
    out_root: Path, subset: str, layouts: list[str], fp: dict[str, Any]
) -> list[PartitionStats] | None:
    """The stats of a finished, intact packaging of ``subset`` with fingerprint ``fp``, else ``None``."""
    return subset_status(out_root, subset, layouts, fp)[0]


def _clear(out_root: Path, subset: str, layouts: list[str]) -> None:
    """Delete a previous, unfinished or outdated packaging of ``subset`` (other subsets stay)."""
    for layout in layouts:
        d = out_root / layout
        for p in [
            *d.glob(f"{subset}-*.tar"),
            *d.glob(f"{ENTRY_DIR}/{subset}-*.json"),
            *d.glob(f".{subset}-*"),
        ]:
            p.unlink()
    for p in stats_glob(out_root, subset):
        p.unlink()


def _write_manifests(out_root: Path, version: str, subset: str, layouts: list[str], entry: dict) -> None:
    for layout in layouts:
        d = out_root / layout
        try:
            subsets = read_manifest(d).get("subsets", {})
        except ValueError as exc:
            if (d / MANIFEST_NAME).exists():
                warn_corrupt(d / MANIFEST_NAME, f"{exc}; rewritten, other subsets are repackaged")
            subsets = {}
        for bad in corrupt_entries(d):
            other = bad.name.split("-", 1)[0]
            warn_corrupt(bad, f"corrupt shard entry {bad}: deleted, subset {other} is repackaged")
            bad.unlink()
            subsets.pop(other, None)
        subsets[subset] = entry
        keep_rule = {name: e["keep_rule"] for name, e in subsets.items()}
        write_manifest(d, version, {"subsets": subsets, "keep_rule": keep_rule, "image_policy": IMAGE_POLICY})


def summary(
    out_root: Path, subset: str, layouts: list[str], stats: list[PartitionStats], skipped: bool
) -> dict:
    """Totals of a packaged subset from its stats and manifests (the return value of ``package_subset``)."""
    removed: dict[str, int] = {}
    for s in stats:
        for reason, n in s.removed.items():
            removed[reason] = removed.get(reason, 0) + n
    out: dict[str, Any] = {"subset": subset, "skipped": skipped, "removed": removed, "layouts": {}}
    out["keep_rule"] = stats[0].extra.get("fingerprint", {}).get("keep_rule") if stats else None
    for key in ("n_in", "n_out"):
        out[key] = sum(getattr(s, key) for s in stats)
    out["splits"] = {sp: sum(s.extra.get(sp, 0) for s in stats) for sp in ("train", "val")}
    for layout in layouts:
        shards = [e for e in read_manifest(out_root / layout)["shards"] if e["subset"] == subset]
        out["layouts"][layout] = {"dir": str(out_root / layout), "n_shards": len(shards),
                                  "n_samples": sum(e["n_samples"] for e in shards),
                                  "bytes": sum(e["bytes"] for e in shards)}  # fmt: skip
    out["stats"] = [asdict(s) for s in stats]
    return out


def package_subset(
    items: Iterable[Sample | Dropped],
    out_root: Path,
    subset: str,
    cfg: PackageConfig,
    *,
    version: str,
    fingerprint: dict[str, Any],
    sources: Iterable[str] = (),
    n_total: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Write ``items`` as shards of ``subset`` in every ``cfg.layouts`` (see the module contract).

    ``sources`` get a stats file even when they have no item; ``n_total`` (samples per split, may be
    approximate) lets ``cfg.n_shards`` size the shards; ``fingerprint`` is recorded for resuming.
    Returns the summary dict of ``package_pub11``.
    """
    _clear(out_root, subset, cfg.layouts)
    packer = _Packer(out_root, subset, cfg, n_total or {})
    for source in sources:
        packer.stat(source)
    try:
        for item in items:
            packer.add(item)
    except BaseException:
        packer.close(ok=False)
        raise
    packer.close(ok=True)
    stats = sorted(packer.stats.values(), key=lambda s: s.source)
    entry = {
        "keep_rule": fingerprint.get("keep_rule"),
        "fingerprint": fingerprint,
        "sources": {s.source: s.n_out for s in stats},
    }
    _write_manifests(out_root, version, subset, cfg.layouts, entry)
    for s in stats:  # written last: the done markers
        s.extra |= {"fingerprint": fingerprint, "layouts": list(cfg.layouts)}
        s.write(_stats_path(out_root, subset, s.source))
    return summary(out_root, subset, cfg.layouts, stats, skipped=False)
