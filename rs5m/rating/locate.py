"""Image locators for sampled pairs: where each pair's image bytes live (see ``rs5m.rating.images``).

- PUB11: the img2dataset tar named in ``download/<source>/<part>/status.parquet``. The stored shard
  path may be relative to the build's working folder, so only its file name is used, next to the
  status file it came from.
- RS3: ``image_path`` of the captions file; a relative path is tried under the version folder, its
  ``rs3`` folder, the data root and the working folder, in that order.
- Either: when that fails and ``package/`` shards exist, the pair's sample in a package shard
  (found by the ``img_name`` member, the ``json`` member's uid, or the key ``make_key(uid)``).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from rs5m.core.layout import VersionLayout
from rs5m.rating.images import IMAGE_SUFFIXES, split_member
from rs5m.shards.layouts import make_key

Locator = tuple[str, str, str | None]


def _ref(version_dir: Path, path: Path) -> str:
    """``path`` relative to the version folder when inside it (so the folder can move), else absolute."""
    path = path.resolve()
    try:
        return str(path.relative_to(version_dir.resolve()))
    except ValueError:
        return str(path)


def locate_pub11(version_dir: Path, row: dict[str, Any]) -> Locator:
    """Locator of a downloaded PUB11 image; ``("none", reason, None)`` when its shard is missing."""
    shard, key, status_file = row.get("shard"), row.get("key"), row.get("status_file")
    if not shard or not key or not status_file:
        return "none", "no shard recorded for this image", None
    tar = Path(status_file).parent / Path(shard).name
    if not tar.is_file():
        return "none", f"shard file missing: {Path(shard).name}", None
    return "tar", _ref(version_dir, tar), str(key)


def locate_rs3(version_dir: Path, row: dict[str, Any]) -> Locator:
    """Locator of an RS3 image file; ``("none", reason, None)`` when no candidate path exists."""
    raw = row.get("image_path")
    if not raw:
        return "none", "no image_path recorded", None
    path = Path(str(raw))
    layout = VersionLayout.of(version_dir)
    roots = [version_dir, layout.rs3_images_dir.parent, layout.root, Path.cwd()]
    candidates = [path] if path.is_absolute() else [r / path for r in roots]
    for cand in candidates:
        if cand.is_file():
            return "file", _ref(version_dir, cand), None
    return "none", f"image file missing: {path.name}", None


def package_fallback(version_dir: Path, items: list[dict[str, Any]]) -> None:
    """Point items without an image at their sample in ``package/`` shards, when there is one."""
    missing = {it["uid"]: it for it in items if it["image_kind"] == "none"}
    pkg = VersionLayout.of(version_dir).package_dir()
    if not missing or not pkg.is_dir():
        return
    by_key = {make_key(uid): uid for uid in missing}
    for tar_path in sorted(pkg.rglob("*.tar")):
        if any(p.startswith("_") for p in tar_path.relative_to(pkg).parts):
            continue
        for uid, key in _package_members(tar_path, set(missing), by_key).items():
            it = missing.pop(uid)
            it["image_kind"], it["image_ref"], it["image_key"] = "tar", _ref(version_dir, tar_path), key
        if not missing:
            return


def _package_members(tar_path: Path, uids: set[str], by_key: dict[str, str]) -> dict[str, str]:
    """``{uid: key}`` for the wanted uids that have an image member in one package shard."""
    uid_of: dict[str, str] = {}
    has_image: set[str] = set()
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for member in tar:
                parts = split_member(member.name) if member.isfile() else None
                if parts is None:
                    continue
                key, suffix = parts
                if suffix in IMAGE_SUFFIXES:
                    has_image.add(key)
                if key in by_key:
                    uid_of[key] = by_key[key]
                elif suffix in ("img_name", "json") and member.size < 65536:
                    uid = _member_uid(tar, member, suffix)
                    if uid in uids:
                        uid_of[key] = uid
    except (OSError, tarfile.TarError):
        return {}
    return {uid: key for key, uid in uid_of.items() if key in has_image}


def _member_uid(tar: tarfile.TarFile, member: tarfile.TarInfo, suffix: str) -> str | None:
    f = tar.extractfile(member)
    if f is None:
        return None
    text = f.read().decode("utf-8", "replace")
    if suffix == "img_name":
        return text.rpartition(".")[0] or text
    try:
        uid = json.loads(text).get("uid")
    except (ValueError, AttributeError):
        return None
    return uid if isinstance(uid, str) else None
