"""Image bytes for a sampled pair, from a download tar, a package shard or an RS3 image file.

A locator is ``(kind, ref, key)`` written at sampling time by ``rs5m.rating.sampling``, never taken
from a client: ``kind`` is ``tar`` (``ref`` a tar file, ``key`` the sample key inside it), ``file``
(``ref`` an image file) or ``none`` (``ref`` says why there is no image). A relative ``ref`` is
relative to the version folder. Tars are indexed once (member headers only) and then read by seek.
"""

from __future__ import annotations

import io
import tarfile
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# Member suffixes that hold image bytes: img2dataset and open_clip extensions, the RS5M layout's
# ``img_content`` and the legacy RS3 tar's ``input.image``.
IMAGE_SUFFIXES = frozenset(
    {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "img_content", "input.image"}
)
_BROWSER_TYPES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
_MAX_INDEXED_TARS = 32


class ImageUnavailable(Exception):
    """The pair's image cannot be shown; the message is the reason shown to the rater."""


def split_member(name: str) -> tuple[str, str] | None:
    """``(key, suffix)`` of a tar member name, split at the first dot of its base name."""
    base = name.rsplit("/", 1)[-1]
    key, dot, suffix = base.partition(".")
    if not dot or not key or not suffix:
        return None
    return key, suffix.lower()


class TarIndex:
    """Thread-safe LRU of ``{key: (offset, size)}`` image-member indexes, one per tar file."""

    def __init__(self, max_tars: int = _MAX_INDEXED_TARS) -> None:
        self._max = max_tars
        self._lock = threading.Lock()
        self._cache: OrderedDict[Path, dict[str, tuple[int, int]]] = OrderedDict()

    def index(self, tar_path: Path) -> dict[str, tuple[int, int]]:
        """The image members of ``tar_path`` by key; ``ImageUnavailable`` when the tar is unreadable."""
        with self._lock:
            if tar_path in self._cache:
                self._cache.move_to_end(tar_path)
                return self._cache[tar_path]
        found = _scan_tar(tar_path)
        with self._lock:
            self._cache[tar_path] = found
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return found

    def read(self, tar_path: Path, key: str) -> bytes:
        """The bytes of ``key``'s image member; ``ImageUnavailable`` with the reason otherwise."""
        if not tar_path.is_file():
            raise ImageUnavailable(f"shard file missing: {tar_path.name}")
        entry = self.index(tar_path).get(key)
        if entry is None:
            raise ImageUnavailable(f"no image for key {key} in {tar_path.name}")
        offset, size = entry
        with open(tar_path, "rb") as f:
            f.seek(offset)
            return f.read(size)


def _scan_tar(tar_path: Path) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for member in tar:
                parts = split_member(member.name) if member.isfile() else None
                if parts and parts[1] in IMAGE_SUFFIXES:
                    out.setdefault(parts[0], (member.offset_data, member.size))
    except (OSError, tarfile.TarError) as exc:
        raise ImageUnavailable(f"unreadable shard {tar_path.name}: {exc}") from exc
    return out


def resolve_ref(version_dir: Path, ref: str) -> Path:
    """An absolute path for a stored ``ref`` (relative refs are under the version folder)."""
    path = Path(ref)
    return path if path.is_absolute() else version_dir / path


def read_image(version_dir: Path, kind: str, ref: str, key: str | None, tars: TarIndex) -> bytes:
    """Raw bytes of a pair's image; ``ImageUnavailable`` (with the reason) when there are none."""
    if kind == "tar" and key:
        return tars.read(resolve_ref(version_dir, ref), key)
    if kind == "file":
        path = resolve_ref(version_dir, ref)
        if not path.is_file():
            raise ImageUnavailable(f"image file missing: {path.name}")
        return path.read_bytes()
    raise ImageUnavailable(ref or "no image recorded for this pair")


def check_image(version_dir: Path, kind: str, ref: str, key: str | None, tars: TarIndex) -> str | None:
    """``None`` when the image can be found, else the reason (cheap: no decoding)."""
    try:
        if kind == "tar" and key:
            path = resolve_ref(version_dir, ref)
            if not path.is_file():
                return f"shard file missing: {path.name}"
            return None if key in tars.index(path) else f"no image for key {key} in {path.name}"
        if kind == "file":
            path = resolve_ref(version_dir, ref)
            return None if path.is_file() else f"image file missing: {path.name}"
    except ImageUnavailable as exc:
        return str(exc)
    return ref or "no image recorded for this pair"


def browser_image(data: bytes) -> tuple[bytes, str]:
    """``(bytes, media type)`` a browser can show: JPEG/PNG/GIF/WebP as is, anything else as PNG.

    Raises ``ImageUnavailable`` for empty or undecodable bytes.
    """
    if not data:
        raise ImageUnavailable("empty image file")
    for magic, media in _BROWSER_TYPES.items():
        if data.startswith(magic):
            return data, media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return data, "image/webp"
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            out = io.BytesIO()
            img.convert("RGB").save(out, format="PNG")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise ImageUnavailable(f"undecodable image: {exc}") from exc
    return out.getvalue(), "image/png"
