"""Loader: all three layouts, plain-webdataset compatibility, node/worker split, shuffling, errors."""

from __future__ import annotations

import io
import random
import tarfile
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest
import torch
import webdataset as wds
from PIL import Image

from rs5m.config import PackageConfig
from rs5m.shards import ClipPreprocess, Sample, make_loader, write_shards
from rs5m.shards.loader import ShardDataset, shuffle_buffer_iter

CFG = PackageConfig(max_samples_per_shard=5, fsync=False)


def _captions(loader) -> list[str]:
    out: list[str] = []
    for images, texts in loader:
        assert images.dtype == torch.float32 and images.shape[1:] == (3, 224, 224)
        assert images.shape[0] == len(texts)
        out.extend(texts)
    return out


def _write_legacy(path: Path, samples: list[Sample]) -> None:
    with tarfile.open(path, "w") as tar:
        for s in samples:
            for suffix, data in (
                ("input.name", s.uid.encode()),
                ("input.image", s.image),
                ("input.caption", s.caption.encode()),
            ):
                info = tarfile.TarInfo(f"{s.uid}.{suffix}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def two_layouts(tmp_path: Path, samples) -> tuple[Path, list[Sample]]:
    src = samples(20)
    write_shards(src[:10], tmp_path, "pub11", "train", "rs5m", CFG)
    write_shards(src[10:], tmp_path, "rs3", "train", "open_clip", CFG)
    return tmp_path, src


def test_open_clip_layout_reads_with_plain_webdataset(tmp_path: Path, samples) -> None:
    src = samples(9)
    write_shards(src, tmp_path, "pub11", "train", "open_clip", CFG)
    urls = sorted(str(p) for p in tmp_path.glob("*.tar"))
    pairs = list(wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("jpg;png;webp", "txt"))
    assert [t for _, t in pairs] == [s.caption for s in src]
    assert all(img.size == s_img.size for (img, _), s_img in zip(pairs, (_pil(s) for s in src), strict=True))


def _pil(s: Sample) -> Image.Image:
    return Image.open(io.BytesIO(s.image))


@pytest.mark.parametrize("layout", ["auto", "fixed"])
def test_reads_rs5m_open_clip_and_legacy_layouts(two_layouts, samples, layout: str) -> None:
    root, src = two_layouts
    legacy = samples(4, exts=("jpg",), prefix="rs3old")
    _write_legacy(root / "RS5M_rs3_val.tar", legacy)
    if layout == "auto":
        got = _captions(make_loader(root, batch_size=7, num_workers=0, shuffle_buffer=0))
        assert Counter(got) == Counter(s.caption for s in src + legacy)
    else:
        for glob_, fixed, expect in (
            ("pub11-*.tar", "rs5m", src[:10]),
            ("rs3-*.tar", "open_clip", src[10:]),
            ("RS5M_*.tar", "legacy", legacy),
        ):
            loader = make_loader(
                str(root / glob_), layout=fixed, batch_size=3, num_workers=0, shuffle_buffer=0
            )
            assert _captions(loader) == [s.caption for s in expect]


def test_two_workers_see_each_sample_once(two_layouts) -> None:
    root, src = two_layouts
    got = _captions(make_loader(root, batch_size=4, num_workers=2, shuffle_buffer=50, seed=3))
    assert sorted(got) == sorted(s.caption for s in src)


def test_nodes_split_shards_disjointly(two_layouts, monkeypatch: pytest.MonkeyPatch) -> None:
    root, src = two_layouts
    seen = []
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        seen.append(_captions(make_loader(root, batch_size=4, num_workers=0, shuffle_buffer=50)))
    assert seen[0] and seen[1]
    assert sorted(seen[0] + seen[1]) == sorted(s.caption for s in src)


def test_shuffle_is_seeded_per_epoch(two_layouts) -> None:
    root, src = two_layouts

    def texts(ds: ShardDataset) -> list[str]:
        return [t for _, ts in ds for t in ts]

    ds = ShardDataset(root, batch_size=100, shuffle_buffer=8, seed=1)
    first, second = texts(ds), texts(ds)  # a second pass over one object advances the epoch
    assert texts(ShardDataset(root, batch_size=100, shuffle_buffer=8, seed=1)) == first
    epoch1 = ShardDataset(root, batch_size=100, shuffle_buffer=8, seed=1)
    epoch1.set_epoch(1)
    assert texts(epoch1) == second
    assert sorted(first) == sorted(second) == sorted(s.caption for s in src)
    assert first != second and first != [s.caption for s in src]


def test_shuffle_buffer_iter_is_a_permutation() -> None:
    for bufsize, initial in ((1, 1), (5, 2), (100, 100), (1000, 10)):
        out = list(shuffle_buffer_iter(range(300), bufsize, random.Random(0), initial))
        assert sorted(out) == list(range(300))


def test_tokenizer_resampled_and_partial(two_layouts) -> None:
    root, _ = two_layouts

    def tokenizer(texts: list[str]) -> torch.Tensor:
        return torch.tensor([[len(t)] for t in texts])

    loader = make_loader(
        root, batch_size=6, num_workers=0, tokenizer=tokenizer, resampled=True, shuffle_buffer=4
    )
    batches = list(islice(iter(loader), 5))
    assert all(im.shape[0] == 6 and tok.shape == (6, 1) for im, tok in batches)
    full = list(make_loader(root, batch_size=6, num_workers=0, partial=False))
    assert [im.shape[0] for im, _ in full] == [6, 6, 6]


def test_bad_samples_are_skipped_or_raised(tmp_path: Path, samples) -> None:
    src = samples(6, exts=("jpg",))
    src[2].image = b"not an image"
    write_shards(src, tmp_path, "pub11", "train", "open_clip", CFG)
    got = _captions(make_loader(tmp_path, batch_size=4, num_workers=0, shuffle_buffer=0))
    assert got == [s.caption for i, s in enumerate(src) if i != 2]
    with pytest.raises(Exception, match="cannot identify"):
        list(make_loader(tmp_path, batch_size=4, num_workers=0, skip_errors=False))
    with pytest.raises(ValueError, match="no shards"):
        make_loader(tmp_path / "nothing-*.tar")
    with pytest.raises(ValueError, match="layout"):
        make_loader(tmp_path, layout="tfrecord")


def test_uint8_batches_normalise_to_the_float_batches(two_layouts) -> None:
    root, _ = two_layouts
    floats = list(make_loader(root, batch_size=8, num_workers=0, shuffle_buffer=0))
    u8 = list(make_loader(root, batch_size=8, num_workers=0, shuffle_buffer=0, normalize=False))
    assert [t for _, t in floats] == [t for _, t in u8]
    assert all(b.dtype == torch.uint8 for b, _ in u8)
    pre = ClipPreprocess()
    assert all(torch.equal(pre.normalize(b), f) for (b, _), (f, _) in zip(u8, floats, strict=True))
