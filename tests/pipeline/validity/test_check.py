"""Validity checks: every kind of bad image gets its own reason; non-RGB images are converted, not dropped."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from rs5m.config import ValidityConfig
from rs5m.pipeline.validity import check as images
from rs5m.pipeline.validity.check import check_image, check_partition, count_invalid, to_rgb

CFG = ValidityConfig()


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def smooth_rgb(seed: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(side: int = 20_000) -> bytes:
    """A valid 1-bit PNG of side x side pixels, all zero, compressed to a few tens of kB."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def test_valid_rgb_jpeg_passes_with_size_and_no_rgb_copy() -> None:
    res = check_image(encode(smooth_rgb(0), "JPEG"), CFG, want_rgb=True)
    assert res.ok and res.reason is None
    assert (res.width, res.height, res.mode) == (96, 64, "RGB")
    assert res.rgb_bytes is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", images.INVALID_EMPTY),
        (b"\x00\x01garbage bytes that are no image" * 10, images.INVALID_UNREADABLE),
        (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", images.INVALID_UNREADABLE),
    ],
)
def test_empty_and_unreadable_bytes(data: bytes, reason: str) -> None:
    res = check_image(data, CFG)
    assert not res.ok and res.reason == reason and res.detail


def test_truncated_jpeg_is_detected_by_full_decode() -> None:
    data = encode(smooth_rgb(1, (400, 300)), "JPEG", quality=90)
    res = check_image(data[: len(data) // 2], CFG)
    assert (res.ok, res.reason) == (False, images.INVALID_TRUNCATED)
    assert (res.width, res.height) == (400, 300)  # the header still parsed


def test_truncated_png_is_invalid() -> None:
    data = encode(Image.effect_noise((200, 200), 64).convert("RGB"), "PNG")
    res = check_image(data[: len(data) // 2], CFG)
    assert not res.ok and res.reason in (images.INVALID_TRUNCATED, images.INVALID_CORRUPT)


def test_corrupt_jpeg_scan_data() -> None:
    data = bytearray(encode(smooth_rgb(2, (256, 256)), "JPEG"))
    body = len(data) // 3
    data[body:-2] = b"\xff\x00" * ((len(data) - 2 - body) // 2)  # scan data replaced; EOI kept
    res = check_image(bytes(data), CFG)
    assert not res.ok or res.mode == "RGB"  # libjpeg may conceal; it must never raise


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_mutated_bytes_never_raise(fmt: str) -> None:
    rng = np.random.default_rng(0)
    data = encode(smooth_rgb(6), fmt)
    for _ in range(60):
        bad = bytearray(data)
        for pos in rng.integers(0, len(bad), 8):
            bad[pos] = int(rng.integers(0, 256))
        res = check_image(bytes(bad[: int(rng.integers(1, len(bad) + 1))]), CFG, want_rgb=True)
        assert res.ok or res.reason in images.INVALID_REASONS


def test_png_bomb_is_refused_without_decoding() -> None:
    before = Image.MAX_IMAGE_PIXELS
    res = check_image(png_bomb(), CFG)
    assert (res.ok, res.reason) == (False, images.INVALID_TOO_MANY_PIXELS)
    assert Image.MAX_IMAGE_PIXELS == before


def test_pixel_limit_comes_from_config_not_from_pil() -> None:
    data = encode(smooth_rgb(3, (120, 100)))
    assert check_image(data, ValidityConfig(max_pixels=12_000)).ok
    res = check_image(data, ValidityConfig(max_pixels=11_999))
    assert res.reason == images.INVALID_TOO_MANY_PIXELS and "120x100" in res.detail


def test_image_between_pil_warning_and_error_limits_uses_our_limit() -> None:
    side = 10_000  # 1e8 px: over PIL's warning limit, under its error limit, over our default
    res = check_image(png_bomb(side), CFG)
    assert res.reason == images.INVALID_TOO_MANY_PIXELS
    assert check_image(png_bomb(side), ValidityConfig(max_pixels=side * side)).ok


@pytest.mark.parametrize(("size", "ok"), [((4, 100), False), ((7, 7), False), ((8, 8), True)])
def test_min_side(size: tuple[int, int], ok: bool) -> None:
    res = check_image(encode(Image.new("RGB", size, (10, 20, 30))), CFG)
    assert res.ok is ok
    if not ok:
        assert res.reason == images.INVALID_TOO_SMALL


def test_cmyk_jpeg_is_converted_not_dropped() -> None:
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)
    res = check_image(data, CFG, want_rgb=True)
    assert res.ok and res.mode == "CMYK" and res.rgb_bytes is not None
    rgb = Image.open(io.BytesIO(res.rgb_bytes))
    assert rgb.mode == "RGB" and rgb.format == "JPEG"
    r, g, b = rgb.getpixel((16, 16))
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta+yellow full = red


def test_palette_png_with_transparency_goes_over_white() -> None:
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 8, 16))
    data = encode(pal, transparency=0)
    res = check_image(data, CFG, want_rgb=True)
    assert res.ok and res.mode == "P"
    rgb = Image.open(io.BytesIO(res.rgb_bytes))
    assert rgb.mode == "RGB" and rgb.format == "PNG"
    assert rgb.getpixel((2, 2)) == (0, 0, 255) and rgb.getpixel((12, 2)) == (255, 255, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    arr = np.tile(np.array([0, 32768, 65535], dtype=np.uint16), (12, 4))
    data = encode(Image.fromarray(arr))
    res = check_image(data, CFG, want_rgb=True)
    assert res.ok and res.mode.startswith("I")
    rgb = np.asarray(Image.open(io.BytesIO(res.rgb_bytes)))
    assert rgb.shape == (12, 12, 3)
    assert tuple(rgb[0, [0, 1, 2], 0]) == (0, 128, 255)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "1", "P", "I", "F", "YCbCr"])
def test_to_rgb_handles_every_common_mode(mode: str) -> None:
    img = smooth_rgb(4).convert(mode) if mode not in ("I", "F") else smooth_rgb(4).convert("L").convert(mode)
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == img.size


def test_check_partition_keeps_order_and_counts_reasons() -> None:
    good = encode(smooth_rgb(5), "JPEG")
    table = pa.table(
        {
            "uid": ["a", "b", "c", "d", "e"],
            "image": [good, b"", None, b"junk" * 20, encode(Image.new("L", (2, 2)))],
        }
    )
    out = check_partition(table, CFG)
    assert out.schema == images.VALIDITY_SCHEMA
    assert out.column("uid").to_pylist() == ["a", "b", "c", "d", "e"]
    assert out.column("valid").to_pylist() == [True, False, False, False, False]
    assert out.column("width").to_pylist()[0] == 96
    assert count_invalid(out) == {
        images.INVALID_EMPTY: 2,
        images.INVALID_UNREADABLE: 1,
        images.INVALID_TOO_SMALL: 1,
    }


def test_real_whu_rs19_images_are_all_valid(shared_data: Path) -> None:
    files = sorted((shared_data / "whu-rs19").rglob("*.jpg"))[::25]
    assert files
    table = pa.table({"uid": [f.name for f in files], "image": [f.read_bytes() for f in files]})
    out = check_partition(table, CFG)
    assert all(out.column("valid").to_pylist())
    assert set(out.column("mode").to_pylist()) == {"RGB"}
