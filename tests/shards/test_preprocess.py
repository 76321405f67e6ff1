"""Fast CLIP preprocess vs the reference transform: exact without draft, close with draft."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from rs5m.shards import ClipPreprocess, reference_clip_transform

REF = reference_clip_transform(224)


def _reference(data: bytes) -> torch.Tensor:
    return REF(Image.open(io.BytesIO(data)))


def _odd_images(encoder) -> list[bytes]:
    def converted(mode: str, ext: str) -> bytes:
        buf = io.BytesIO()
        Image.open(io.BytesIO(encoder((300, 260), "png"))).convert(mode).save(buf, ext)
        return buf.getvalue()

    return [
        encoder((500, 400), "jpg"),
        encoder((400, 700), "jpg", mode="L"),
        encoder((120, 90), "png"),  # upscaled
        encoder((224, 224), "webp"),
        converted("RGBA", "PNG"),
        converted("P", "PNG"),
        converted("L", "JPEG"),
        converted("CMYK", "JPEG"),
    ]


def test_exact_path_is_bit_identical_to_reference(encoder) -> None:
    pre = ClipPreprocess(224, draft=False)
    data = _odd_images(encoder)
    batch = pre.to_batch([pre.decode(d) for d in data])
    assert torch.equal(batch, torch.stack([_reference(d) for d in data]))
    u8 = pre.to_batch([pre.decode(d) for d in data], normalize=False)
    assert u8.dtype == torch.uint8 and torch.equal(pre.normalize(u8), batch)


def test_reference_matches_open_clip_eval_transform(encoder) -> None:
    open_clip = pytest.importorskip("open_clip")
    oc = open_clip.image_transform(224, is_train=False)
    for d in _odd_images(encoder)[:3]:
        assert torch.equal(oc(Image.open(io.BytesIO(d))), _reference(d))


def test_exact_on_real_images(whu_jpegs: list[bytes]) -> None:
    pre = ClipPreprocess(224, draft=False)
    data = whu_jpegs[:8]
    assert torch.equal(
        pre.to_batch([pre.decode(d) for d in data]), torch.stack([_reference(d) for d in data])
    )


def test_draft_is_close_on_real_images(whu_jpegs: list[bytes]) -> None:
    pre = ClipPreprocess(224, draft=True)
    diff = (
        pre.to_batch([pre.decode(d) for d in whu_jpegs]) - torch.stack([_reference(d) for d in whu_jpegs])
    ).abs()
    # normalised units (1/255 of a pixel is ~0.015): worst pixel stays a fraction of the range
    assert diff.max() < 0.75
    assert diff.mean() < 0.03


@pytest.mark.parametrize(
    ("size", "mode", "tensor_path"),
    [
        ((712, 718), "RGB", True),
        ((1200, 896), "RGB", True),
        ((711, 718), "RGB", False),
        ((1203, 905), "L", False),
    ],
)
def test_draft_keeps_geometry(encoder, monkeypatch, size, mode, tensor_path) -> None:
    # e.g. 711x718 drafts to 356x359 (a partial edge pixel): the resize must still target the
    # reference's 224x226 over the original's extent, then crop the same window
    pre = ClipPreprocess(224, draft=True)
    calls = []
    real = pre._resize_tensor
    monkeypatch.setattr(pre, "_resize_tensor", lambda *a: calls.append(1) or real(*a))
    d = encoder(size, "jpg", mode=mode)
    diff = (pre(d) - _reference(d)).abs()
    assert bool(calls) == tensor_path
    assert diff.mean() < 0.06 and diff.max() < 0.75  # a one-pixel crop shift gives ~0.2 / 1.6


def test_draft_leaves_small_and_non_jpeg_images_alone(encoder) -> None:
    fast, exact = ClipPreprocess(224, draft=True), ClipPreprocess(224, draft=False)
    for d in (encoder((440, 300), "jpg"), encoder((900, 700), "png")):
        assert torch.equal(fast(d), exact(d))
