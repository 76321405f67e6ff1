"""Procedural (or real WHU-RS19) images for the sample world, deterministic per seed.

Contract:
- ``render(spec, ...)`` returns the exact bytes the local server will serve for one ``ImageSpec``:
  an encoded JPEG/PNG of ``spec.width`` x ``spec.height`` pixels, or planted broken bytes
  (``fault`` = "zero": empty file, "truncated": first third of a JPEG, "html": an error page, "bomb": a
  ~110 KB 1-bit PNG whose header declares ``BOMB_SIDE`` x ``BOMB_SIDE`` pixels, a decompression bomb).
- "aerial" images look like a scene seen from above (field parcels, roads, roofs, a river); "ordinary"
  ones are gradients with shapes, a face-like portrait or a product on white.
- Same ``seed`` and spec -> same bytes (no clock, no global RNG; PIL encoders are deterministic).
"""

from __future__ import annotations

import functools
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BOMB_SIDE = 30_000  # 900 M pixels: over PIL's and the validity stage's 89.5 M limit (and twice it)
FIELD_COLOURS = [(88, 120, 60), (120, 140, 70), (150, 130, 90), (170, 160, 110), (70, 95, 55), (140, 110, 80)]
ROOF_COLOURS = [(160, 70, 60), (120, 120, 125), (200, 200, 195), (90, 80, 75)]


@dataclass(frozen=True)
class ImageSpec:
    """One served image. ``path`` is relative to the images root ("<source>/<name>.<ext>")."""

    path: str
    width: int
    height: int
    look: str = "ordinary"  # "aerial" | "ordinary"
    fault: str | None = None  # None | "zero" | "truncated" | "html" | "bomb"
    near_dup_of: str | None = None  # path of an image this one re-encodes (resized, lower quality)


def _jitter(rng: np.random.Generator, c: tuple[int, int, int], amount: int = 18) -> tuple[int, int, int]:
    d = rng.integers(-amount, amount + 1, size=3).tolist()
    return min(255, max(0, c[0] + d[0])), min(255, max(0, c[1] + d[1])), min(255, max(0, c[2] + d[2]))


def aerial_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Parcels of fields split recursively, crossed by roads, with roof clusters and maybe a river."""
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    boxes = [(0, 0, width, height)]
    for _ in range(int(rng.integers(6, 14))):
        x0, y0, x1, y1 = boxes.pop(int(rng.integers(len(boxes))))
        if x1 - x0 > y1 - y0 and x1 - x0 > 16:
            cut = int(rng.integers(x0 + 6, x1 - 6))
            boxes += [(x0, y0, cut, y1), (cut, y0, x1, y1)]
        elif y1 - y0 > 16:
            cut = int(rng.integers(y0 + 6, y1 - 6))
            boxes += [(x0, y0, x1, cut), (x0, cut, x1, y1)]
        else:
            boxes.append((x0, y0, x1, y1))
    for box in boxes:
        draw.rectangle(box, fill=_jitter(rng, FIELD_COLOURS[int(rng.integers(len(FIELD_COLOURS)))]))
    if rng.random() < 0.5:
        pts = [(0, int(rng.integers(height)))]
        for x in range(width // 6, width + width // 6, width // 6):
            pts.append((x, int(np.clip(pts[-1][1] + rng.integers(-height // 6, height // 6 + 1), 0, height))))
        draw.line(pts, fill=(60, 90, 130), width=max(3, width // 25))
    for _ in range(int(rng.integers(2, 5))):
        w = int(rng.integers(2, 5))
        if rng.random() < 0.5:
            y = int(rng.integers(height))
            draw.line(
                [(0, y), (width, y + int(rng.integers(-height // 4, height // 4 + 1)))],
                fill=(110, 110, 105),
                width=w,
            )
        else:
            x = int(rng.integers(width))
            draw.line(
                [(x, 0), (x + int(rng.integers(-width // 4, width // 4 + 1)), height)],
                fill=(110, 110, 105),
                width=w,
            )
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = int(rng.integers(width)), int(rng.integers(height))
        for _ in range(int(rng.integers(4, 14))):
            x, y = cx + int(rng.integers(-30, 31)), cy + int(rng.integers(-30, 31))
            s = int(rng.integers(3, 9))
            draw.rectangle((x + 1, y + 1, x + s + 1, y + s + 1), fill=(40, 40, 40))
            draw.rectangle(
                (x, y, x + s, y + s),
                fill=_jitter(rng, ROOF_COLOURS[int(rng.integers(len(ROOF_COLOURS)))], 10),
            )
    arr = np.asarray(img, dtype=np.int16) + rng.integers(-12, 13, size=(height, width, 1), dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def ordinary_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A gradient with soft shapes, a face-like portrait, or a product on a white background."""
    kind = int(rng.integers(3))
    top, bottom = _jitter(rng, (200, 170, 150), 60), _jitter(rng, (60, 80, 140), 60)
    mid = tuple((a + b) // 2 for a, b in zip(top, bottom, strict=True))
    corners = Image.new("RGB", (2, 2))
    corners.putdata([top, mid, mid, bottom] if rng.random() < 0.5 else [mid, top, bottom, mid])
    img = (
        corners.resize((width, height), Image.Resampling.BILINEAR)
        if kind < 2
        else Image.new("RGB", (width, height), (248, 248, 248))
    )
    draw = ImageDraw.Draw(img)
    if kind < 2:
        for _ in range(int(rng.integers(2, 9))):
            r = int(rng.integers(5, max(6, min(width, height) // 3)))
            x, y = int(rng.integers(width)), int(rng.integers(height))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(rng, (230, 200, 120), 80))
    if kind == 1:
        r = int(min(width, height) * rng.uniform(0.2, 0.35))
        cx, cy = int(width * rng.uniform(0.35, 0.65)), int(height * rng.uniform(0.4, 0.6))
        draw.ellipse(
            (cx - r, cy - int(r * 1.2), cx + r, cy + int(r * 1.2)), fill=_jitter(rng, (225, 185, 160), 25)
        )
        for dx in (-r // 3, r // 3):
            draw.ellipse((cx + dx - 3, cy - r // 4 - 3, cx + dx + 3, cy - r // 4 + 3), fill=(40, 30, 30))
        draw.arc((cx - r // 3, cy + r // 6, cx + r // 3, cy + r // 2), 20, 160, fill=(150, 60, 60), width=2)
    elif kind == 2:
        w, h = int(width * rng.uniform(0.3, 0.6)), int(height * rng.uniform(0.3, 0.7))
        x, y = (width - w) // 2, (height - h) // 2
        draw.rectangle((x + 4, y + 4, x + w + 4, y + h + 4), fill=(215, 215, 215))
        draw.rounded_rectangle((x, y, x + w, y + h), radius=6, fill=_jitter(rng, (90, 120, 180), 90))
    return img


def real_aerial(path: Path, rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A random crop of a real aerial image with the target aspect ratio, resized to the target size."""
    with Image.open(path) as src:
        src = src.convert("RGB")
        sw, sh = src.size
        scale = min(sw / width, sh / height) * rng.uniform(0.7, 1.0)
        cw, ch = max(1, int(width * scale)), max(1, int(height * scale))
        x, y = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
        return src.crop((x, y, x + cw, y + ch)).resize((width, height), Image.Resampling.LANCZOS)


def near_duplicate(original: Image.Image, width: int, height: int) -> Image.Image:
    """The same picture resized (to ``width`` x ``height``) - re-encoded later at lower quality."""
    return original.resize((width, height), Image.Resampling.BICUBIC)


def encode(img: Image.Image, ext: str, quality: int = 85) -> bytes:
    """Encode as JPEG (``jpg``) or PNG, deterministically."""
    buf = io.BytesIO()
    if ext == "png":
        img.save(buf, format="PNG", optimize=False)
    else:
        img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


@functools.cache
def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit greyscale PNG of ``side`` x ``side`` black pixels: small on the wire, huge decoded."""
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # depth 1, greyscale, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def faulty_bytes(fault: str, good: bytes) -> bytes:
    """Broken content for a planted invalid image."""
    if fault == "bomb":
        return bomb_png()
    if fault == "zero":
        return b""
    if fault == "truncated":
        return good[: max(1, len(good) // 3)]
    return b"<!DOCTYPE html><html><body><h1>404</h1><p>Image not found</p></body></html>\n"


def write_images(specs: list[ImageSpec], root: Path, seed: int, real_files: list[Path] | None = None) -> int:
    """Render every spec to ``root/<spec.path>``; returns the number of files written.

    ``real_files`` (already shuffled by the caller) are used one per aerial image, in order, so no two
    served images are crops of the same real photo; specs named by ``near_dup_of`` must come earlier.
    """
    pictures: dict[str, Image.Image] = {}
    wanted = {s.near_dup_of for s in specs if s.near_dup_of}
    real = iter(real_files or [])
    for spec in specs:
        rng = np.random.default_rng([seed, zlib.crc32(spec.path.encode("utf-8"))])
        ext = spec.path.rsplit(".", 1)[-1]
        quality = 85
        if spec.near_dup_of:
            img, quality = near_duplicate(pictures[spec.near_dup_of], spec.width, spec.height), 70
        elif spec.look == "aerial":
            path = next(real, None)
            img = (
                real_aerial(path, rng, spec.width, spec.height)
                if path
                else aerial_image(rng, spec.width, spec.height)
            )
        else:
            img = ordinary_image(rng, spec.width, spec.height)
        if spec.path in wanted:
            pictures[spec.path] = img
        data = encode(img, ext, quality)
        if spec.fault:
            data = faulty_bytes(spec.fault, data)
        out = root / spec.path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return len(specs)
