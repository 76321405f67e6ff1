"""Fuzzed image bytes through ``rs5m.pipeline.validity.check.check_image``.

Properties: ``check_image`` never raises; a result is ``ok`` or carries one of ``INVALID_REASONS``;
``ok`` holds exactly when PIL decodes the bytes completely and the size is within the limits
(``max_pixels``, ``min_side``); a header declaring more pixels than the limit is refused as
``too_many_pixels`` without decoding; ``want_rgb`` gives decodable RGB bytes for every non-RGB image.

Inputs: random bytes, zero bytes, real images in many modes (RGB, L, CMYK, P, RGBA, LA, 16-bit grey)
and formats (PNG, JPEG, GIF, animated GIF and PNG, BMP, TIFF, WebP), then truncated, with bytes
flipped, with the magic replaced, or prefixed with garbage; and tiny PNGs declaring huge sizes.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from rs5m.config import ValidityConfig
from rs5m.pipeline.validity.check import INVALID_REASONS, INVALID_TOO_MANY_PIXELS, check_image
from tests.faults import fuzz_settings, record

_MODES_FORMATS = [
    ("RGB", "PNG"),
    ("RGB", "JPEG"),
    ("L", "JPEG"),
    ("CMYK", "JPEG"),
    ("P", "GIF"),
    ("RGBA", "PNG"),
    ("LA", "PNG"),
    ("I;16", "PNG"),
    ("RGB", "BMP"),
    ("RGB", "TIFF"),
    ("RGB", "WEBP"),
    ("P", "PNG"),
]


@st.composite
def real_image(draw: st.DrawFn) -> bytes:
    """A small, valid image in a random mode/format; sometimes animated (GIF/PNG)."""
    mode, fmt = draw(st.sampled_from(_MODES_FORMATS))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65_535, (h, w), dtype=np.uint16))
    else:
        img = Image.new(mode, (w, h))
        img.frombytes(rng.integers(0, 256, len(img.tobytes()), dtype=np.uint8).tobytes())
    buf = io.BytesIO()
    if fmt in ("GIF", "PNG") and draw(st.booleans()):
        frames = [img.copy() for _ in range(draw(st.integers(1, 3)))]
        img.save(buf, fmt, save_all=True, append_images=frames)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


@st.composite
def huge_png(draw: st.DrawFn) -> bytes:
    """A few-hundred-byte PNG whose header declares a huge size (a decompression bomb's header)."""
    w, h = draw(st.integers(20_000, 2**31 - 1)), draw(st.integers(20_000, 2**31 - 1))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, draw(st.sampled_from([0, 2, 6])), 0, 0, 0)
    idat = zlib.compress(b"\x00" * draw(st.integers(0, 200)))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real image damaged in one of several ways."""
    data = draw(real_image())
    how = draw(st.sampled_from(["truncate", "flip", "magic", "prefix", "suffix"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    if how == "magic":
        return draw(st.binary(min_size=4, max_size=4)) + data[4:]
    if how == "prefix":
        return draw(st.sampled_from([b"<html>", b"\x00\x00", b"GIF89a"])) + data
    return data + draw(st.binary(max_size=32))


def _decodes(data: bytes, cfg: ValidityConfig) -> bool:
    """Oracle: PIL opens and fully decodes ``data`` and its size is within ``cfg``'s limits."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > cfg.max_pixels or min(w, h) < cfg.min_side:
                return False
            img.load()
            return True
    except Exception:
        return False


_inputs = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    real_image(),
    mutated(),
    mutated(),
    huge_png(),
)


@fuzz_settings(150)
@given(data=_inputs, min_side=st.sampled_from([1, 8]), max_pixels=st.sampled_from([200, 89_478_485]))
def test_check_image_never_raises_and_matches_decodability(
    data: bytes, min_side: int, max_pixels: int
) -> None:
    """``ok`` exactly when the bytes decode within limits; otherwise one of the known reasons."""
    cfg = ValidityConfig(min_side=min_side, max_pixels=max_pixels)
    try:
        res = check_image(data, cfg, want_rgb=True)
    except Exception as exc:
        record("images", handled=False, crash=True, detail=f"{type(exc).__name__}: {exc}"[:200])
        raise
    expect = _decodes(data, cfg)
    good = res.ok == expect and (res.ok or res.reason in INVALID_REASONS)
    if res.ok and res.mode != "RGB":
        assert res.rgb_bytes is not None
        with Image.open(io.BytesIO(res.rgb_bytes)) as rgb:
            rgb.load()
            good = good and rgb.mode == "RGB" and rgb.size == (res.width, res.height)
    record("images", handled=good)
    assert good, (res, expect)


@fuzz_settings(40)
@given(data=huge_png())
def test_declared_bomb_refused_from_header(data: bytes) -> None:
    """A tiny PNG declaring billions of pixels is ``too_many_pixels`` (never decoded)."""
    res = check_image(data, ValidityConfig())
    record("images", handled=res.reason == INVALID_TOO_MANY_PIXELS)
    assert not res.ok and res.reason == INVALID_TOO_MANY_PIXELS, res
