"""Tar member conventions of the three shard layouts, and safe sample keys.

- ``rs5m`` (released RS5M): ``<key>.img_name`` (utf-8 file name), ``<key>.img_content`` (raw image
  bytes), ``<key>.caption`` (utf-8).
- ``open_clip``: ``<key>.jpg|png|webp`` (raw image bytes), ``<key>.txt`` (caption), ``<key>.json``
  (uid, source, scores, caption provenance).
- ``legacy`` (read only; the old RS3 v3 tar): ``<key>.input.name``, ``<key>.input.image``,
  ``<key>.input.caption``.

A member name is ``<key>.<suffix>``; the key never contains ``.`` or ``/`` (webdataset splits the
name at the first dot of its base name), so suffixes may contain dots (``input.image``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

RS5M_SUFFIXES = ("img_name", "img_content", "caption")
LEGACY_SUFFIXES = ("input.name", "input.image", "input.caption")
OPEN_CLIP_IMAGE_EXTS = ("jpg", "png", "webp")
# Extensions the reader accepts as the image member of an open_clip-style sample.
READ_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "tif", "tiff", "bmp", "gif")
MAX_KEY_LEN = 64

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_EXT_ALIASES = {"jpeg": "jpg", "jpe": "jpg"}


def make_key(uid: str) -> str:
    """Return a tar-safe sample key for ``uid``: the uid itself when it is already safe.

    Safe means only ``[A-Za-z0-9_-]``, at most ``MAX_KEY_LEN`` characters, not starting with ``_``.
    Otherwise the sanitized prefix is joined to a hash of the full uid, so distinct uids keep
    distinct keys.
    """
    if not uid:
        raise ValueError("empty uid")
    if len(uid) <= MAX_KEY_LEN and not _UNSAFE.search(uid) and not uid.startswith("_"):
        return uid
    digest = hashlib.sha1(uid.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    prefix = _UNSAFE.sub("_", uid).lstrip("_")[: MAX_KEY_LEN - 17]
    return f"{prefix}-{digest}" if prefix else f"k-{digest}"


def normalize_ext(ext: str) -> str:
    """Lower-case image extension without the dot; ``jpeg`` becomes ``jpg``."""
    e = ext.lower().lstrip(".")
    if not e or _UNSAFE.search(e):
        raise ValueError(f"bad image extension {ext!r}")
    return _EXT_ALIASES.get(e, e)


def layout_members(
    layout: str, key: str, uid: str, source: str, caption: str, image: bytes, ext: str, meta: dict[str, Any]
) -> list[tuple[str, bytes]]:
    """Return the ``(member name, bytes)`` list of one sample in ``layout``, in write order."""
    ext = normalize_ext(ext)
    text = caption.encode("utf-8")
    if layout == "rs5m":
        return [
            (f"{key}.img_name", f"{uid}.{ext}".encode()),
            (f"{key}.img_content", image),
            (f"{key}.caption", text),
        ]
    if layout == "open_clip":
        if ext not in OPEN_CLIP_IMAGE_EXTS:
            raise ValueError(f"{uid}: open_clip layout stores {OPEN_CLIP_IMAGE_EXTS}, not {ext!r}")
        record = {**meta, "uid": uid, "source": source}
        blob = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
        return [(f"{key}.{ext}", image), (f"{key}.txt", text), (f"{key}.json", blob)]
    raise ValueError(f"unknown layout {layout!r}")


def split_name(name: str) -> tuple[str, str] | None:
    """Split a member name into ``(key, suffix)`` the webdataset way; ``None`` if it has no suffix."""
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot <= slash + 1 or dot == len(name) - 1:
        return None
    return name[:dot], name[dot + 1 :].lower()


@dataclass
class Record:
    """One sample read back from a shard, in any layout; members not needed are left undecoded."""

    key: str
    layout: str
    image: bytes
    caption_bytes: bytes
    image_ext: str = ""
    members: dict[str, bytes] = field(default_factory=dict)

    @property
    def caption(self) -> str:
        """The caption as text (invalid utf-8 replaced, never raised)."""
        return self.caption_bytes.decode("utf-8", "replace")


def detect_layout(members: dict[str, bytes]) -> str | None:
    """Return the layout of a grouped sample from its member suffixes, or ``None`` if unknown."""
    if "img_content" in members:
        return "rs5m"
    if "input.image" in members:
        return "legacy"
    if any(e in members for e in READ_IMAGE_EXTS):
        return "open_clip"
    return None


def to_record(key: str, members: dict[str, bytes], layout: str = "auto") -> Record:
    """Interpret grouped members as a ``Record``; raise ``ValueError`` when image or caption is missing."""
    found = detect_layout(members) if layout == "auto" else layout
    if found == "rs5m":
        img, cap, ext = members.get("img_content"), members.get("caption"), ""
    elif found == "legacy":
        img, cap, ext = members.get("input.image"), members.get("input.caption"), ""
    elif found == "open_clip":
        ext = next((e for e in READ_IMAGE_EXTS if e in members), "")
        img, cap = members.get(ext), members.get("txt")
    else:
        raise ValueError(f"{key}: unknown layout {found!r} (members {sorted(members)})")
    if img is None or cap is None:
        raise ValueError(f"{key}: not a complete {found} sample (members {sorted(members)})")
    return Record(key=key, layout=found, image=img, caption_bytes=cap, image_ext=ext, members=members)
