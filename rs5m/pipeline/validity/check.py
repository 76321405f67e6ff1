"""Image validity: which downloaded images can be decoded, and their conversion to RGB.

Contract:
- ``check_image(data, cfg)`` never raises for bad bytes: it returns an ``ImageCheck`` whose ``reason``
  is one of the ``INVALID_*`` codes below (``None`` when the image is valid).
- Checks run cheapest first: empty bytes, unidentifiable bytes, declared pixel count over
  ``cfg.max_pixels`` (decompression bombs, read from the header before any decoding), a side under
  ``cfg.min_side``, then a full decode, which catches truncated or corrupt pixel data.
- Non-RGB images (CMYK, palette, grey, 16-bit grey, with alpha) are valid; ``to_rgb`` converts them,
  composing transparency over white. ``check_image(..., want_rgb=True)`` returns re-encoded RGB bytes for
  them (``None`` when the original bytes already hold an RGB image).
- The pixel limit is local: ``PIL.Image.MAX_IMAGE_PIXELS`` is never changed. PIL itself refuses images
  above twice that global limit at open time; those are reported as ``too_many_pixels`` too.
"""

from __future__ import annotations

import io
import warnings
from typing import NamedTuple

import numpy as np
import pyarrow as pa
from PIL import Image

from rs5m.config import ValidityConfig
from rs5m.core.schema import Reason

# Reason codes of the validity stage.
INVALID_EMPTY = Reason.EMPTY_IMAGE.value  # zero bytes
INVALID_UNREADABLE = Reason.UNREADABLE_IMAGE.value  # no known image format (HTML error page, garbage)
INVALID_TRUNCATED = Reason.TRUNCATED_IMAGE.value  # pixel data ends early
INVALID_CORRUPT = Reason.CORRUPT_IMAGE.value  # the header parses but the pixel data does not decode
INVALID_TOO_MANY_PIXELS = Reason.TOO_MANY_PIXELS.value  # over the pixel limit (decompression bomb)
INVALID_TOO_SMALL = Reason.TOO_SMALL.value  # a side under the minimum
INVALID_REASONS = (
    INVALID_EMPTY,
    INVALID_UNREADABLE,
    INVALID_TRUNCATED,
    INVALID_CORRUPT,
    INVALID_TOO_MANY_PIXELS,
    INVALID_TOO_SMALL,
)

_WHITE = (255, 255, 255)


class ImageCheck(NamedTuple):
    """Outcome of ``check_image``; ``width``/``height``/``mode`` are set whenever the header parsed."""

    ok: bool
    reason: str | None = None
    detail: str | None = None
    width: int | None = None
    height: int | None = None
    mode: str | None = None
    rgb_bytes: bytes | None = None


def _scale_to_uint8(img: Image.Image) -> Image.Image:
    """Integer / float grey (16-bit PNG, TIFF) to 8-bit 'L'; values above 255 are scaled, not clipped."""
    arr = np.asarray(img, dtype=np.float64)
    top = float(arr.max(initial=0.0))
    if top > 255:
        arr = arr * (255.0 / (65535.0 if top <= 65535 else top))
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Return ``img`` as an RGB image (the same object when it already is RGB)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "F") or img.mode.startswith("I;"):
        return _scale_to_uint8(img).convert("RGB")
    if (img.mode == "P" and "transparency" in img.info) or img.mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        canvas = Image.new("RGB", img.size, _WHITE)
        canvas.paste(img, mask=img.getchannel("A"))
        return canvas
    return img.convert("RGB")


def _encode_rgb(img: Image.Image, fmt: str | None, cfg: ValidityConfig) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=cfg.rgb_jpeg_quality)
    else:
        img.save(buf, "PNG")
    return buf.getvalue()


def _open(data: bytes) -> tuple[Image.Image | None, ImageCheck | None]:
    if not data:
        return None, ImageCheck(False, INVALID_EMPTY, "0 bytes")
    try:
        with warnings.catch_warnings():
            # our limit decides below; PIL's bomb warning and its metadata complaints are per-sample noise
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data)), None
    except Image.DecompressionBombError as exc:
        return None, ImageCheck(False, INVALID_TOO_MANY_PIXELS, str(exc)[:200])
    except Exception as exc:  # PIL plugins raise many types on hostile headers; all mean "unreadable"
        return None, ImageCheck(False, INVALID_UNREADABLE, f"{type(exc).__name__}: {exc}"[:200])


def _header_problem(img: Image.Image, cfg: ValidityConfig) -> tuple[str, str] | None:
    w, h = img.size
    if w * h > cfg.max_pixels:
        return INVALID_TOO_MANY_PIXELS, f"{w}x{h}={w * h} px > {cfg.max_pixels}"
    if min(w, h) < cfg.min_side:
        return INVALID_TOO_SMALL, f"{w}x{h}: a side < {cfg.min_side}"
    return None


def _decode(img: Image.Image) -> tuple[str, str] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
    except Exception as exc:  # any decoder failure is a property of these bytes, not a bug here
        msg = f"{type(exc).__name__}: {exc}"[:200]
        return (INVALID_TRUNCATED if "truncated" in str(exc).lower() else INVALID_CORRUPT), msg
    return None


def check_image(data: bytes, cfg: ValidityConfig, *, want_rgb: bool = False) -> ImageCheck:
    """Decide whether ``data`` is a usable image (see the module contract); never raises for bad bytes."""
    img, failed = _open(data)
    if failed is not None:
        return failed
    assert img is not None
    w, h, mode, fmt = img.width, img.height, img.mode, img.format
    problem = _header_problem(img, cfg) or _decode(img)
    if problem is not None:
        return ImageCheck(False, problem[0], problem[1], w, h, mode)
    rgb = None
    if want_rgb and mode != "RGB":
        rgb = _encode_rgb(to_rgb(img), fmt, cfg)
    return ImageCheck(True, None, None, w, h, mode, rgb)


VALIDITY_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("valid", pa.bool_(), nullable=False),
        pa.field("invalid_reason", pa.string()),
        pa.field("invalid_detail", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("mode", pa.string()),
    ]
)


def check_partition(
    table: pa.Table, cfg: ValidityConfig, *, uid_col: str = "uid", image_col: str = "image"
) -> pa.Table:
    """Check every image of a partition; one output row per input row, in order (``VALIDITY_SCHEMA``).

    A null image counts as empty.
    """
    rows: dict[str, list] = {name: [] for name in VALIDITY_SCHEMA.names}
    for uid, data in zip(table.column(uid_col).to_pylist(), table.column(image_col).to_pylist(), strict=True):
        res = check_image(data or b"", cfg)
        for name, value in zip(
            VALIDITY_SCHEMA.names,
            (uid, res.ok, res.reason, res.detail, res.width, res.height, res.mode),
            strict=True,
        ):
            rows[name].append(value)
    return pa.table(rows, schema=VALIDITY_SCHEMA)


def count_invalid(result: pa.Table) -> dict[str, int]:
    """Number of rows per invalid reason in a ``check_partition`` result."""
    counts = result.column("invalid_reason").drop_null().value_counts().to_pylist()
    return {c["values"]: c["counts"] for c in counts}
