"""Caption data in the RSITMD/RSICD layouts -> (image, caption) batches for BLIP-2; fixtures; fingerprints.

Contracts:
- ``read_split`` returns a :class:`CaptionData`: ``pairs`` (filename, caption) in file order, ``refs``
  (captions per image, file order) and ``images`` (sorted unique names; ``limit_images`` keeps the first
  N of them). Equal-length txt files and CSVs go through ``rs5m.ml.evaluation.retrieval``'s readers; a txt
  captions file with k x the filename lines (RSITMD/RSICD train) maps caption i to image i // k.
- ``data_fingerprint`` = sha256 over the pairs (JSON, in order) and each image's name and byte size.
- ``Collator`` builds BLIP-2 inputs: ``num_query_tokens`` image tokens, BOS, caption tokens (truncated),
  EOS, right padding; ``labels`` = the ids with -100 on image tokens and padding (the model shifts).
- Pixels use the RS3 sampler's transform (RGB, bicubic square resize, CLIP normalisation), so training
  and captioning see the same inputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from rs5m.config.captioner import CaptionSplit, FixtureSpec
from rs5m.ml.blip2 import CLIP_MEAN, CLIP_STD
from rs5m.ml.evaluation.retrieval import RetrievalSplit, read_csv_split, read_txt_split


@dataclass(frozen=True)
class CaptionData:
    """One split: ``pairs`` in file order, ``refs[name]`` its captions, ``images`` sorted unique names."""

    images_dir: Path
    pairs: list[tuple[str, str]]
    refs: dict[str, list[str]]
    images: list[str]


def _lines(path: str, encoding: str | None) -> list[str]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"caption file not found: {path}")
    lines = Path(path).read_text(encoding=encoding or "utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


def _from_retrieval(split: RetrievalSplit) -> list[tuple[str, str]]:
    return [(split.images[int(i)], c) for c, i in zip(split.captions, split.caption_image, strict=True)]


def read_split(split: CaptionSplit) -> CaptionData:
    """Read one split (see module contract); raises ``FileNotFoundError``/``ValueError`` on bad input."""
    if split.format == "csv":
        pairs = _from_retrieval(read_csv_split(split.csv, split.encoding))
    else:
        caps, names = _lines(split.captions, split.encoding), _lines(split.filenames, split.encoding)
        if names and len(caps) != len(names) and len(caps) % len(names) == 0:
            k = len(caps) // len(names)
            pairs = [(names[i // k], c) for i, c in enumerate(caps)]
        else:
            pairs = _from_retrieval(read_txt_split(split.captions, split.filenames, split.encoding))
    images = sorted({n for n, _ in pairs})
    if split.limit_images is not None:
        images = images[: split.limit_images]
        keep = set(images)
        pairs = [p for p in pairs if p[0] in keep]
    refs: dict[str, list[str]] = {n: [] for n in images}
    for name, cap in pairs:
        refs[name].append(cap)
    root = Path(split.images)
    missing = [n for n in images if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images missing under {root}, e.g. {missing[0]}")
    return CaptionData(root, pairs, refs, images)


def data_fingerprint(data: CaptionData) -> str:
    """sha256 hex of the pairs and the images' names and sizes (see module contract)."""
    h = hashlib.sha256(json.dumps(data.pairs, ensure_ascii=False).encode())
    for name in data.images:
        h.update(f"\n{name}\t{(data.images_dir / name).stat().st_size}".encode())
    return h.hexdigest()


def pixel_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """The RS3 sampler's BLIP-2 eval transform for one image -> float32 ``[3, size, size]``."""
    from torchvision.transforms import functional as F

    img = img.convert("RGB").resize((size, size), Image.BICUBIC)
    return F.normalize(F.to_tensor(img), CLIP_MEAN, CLIP_STD)


class PairDataset(torch.utils.data.Dataset):
    """(pixels, caption) for every pair of a split."""

    def __init__(self, data: CaptionData, image_size: int):
        self.data, self.size = data, image_size

    def __len__(self) -> int:
        return len(self.data.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        name, caption = self.data.pairs[i]
        with Image.open(self.data.images_dir / name) as img:
            return pixel_tensor(img, self.size), caption


class Collator:
    """Batch (pixels, caption) items into BLIP-2 inputs: pixel_values, input_ids, attention_mask, labels."""

    def __init__(self, tokenizer: Any, num_query_tokens: int, image_token_id: int, max_tokens: int):
        self.tok, self.nq, self.image_id, self.max_tokens = (
            tokenizer,
            num_query_tokens,
            image_token_id,
            max_tokens,
        )
        self.bos = tokenizer.bos_token_id
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos

    def __call__(self, batch: list[tuple[torch.Tensor, str]]) -> dict[str, torch.Tensor]:
        pixels = torch.stack([b[0] for b in batch])
        texts = self.tok([b[1] for b in batch], add_special_tokens=False).input_ids
        rows = [[self.bos, *ids[: self.max_tokens - 2], self.eos] for ids in texts]
        width = self.nq + max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = self.nq + len(r)
            input_ids[i, : self.nq] = self.image_id
            input_ids[i, self.nq : n] = torch.tensor(r)
            labels[i, self.nq : n] = torch.tensor(r)
            mask[i, :n] = 1
        return {"pixel_values": pixels, "input_ids": input_ids, "attention_mask": mask, "labels": labels}


# --- fixtures ------------------------------------------------------------------------------------------

_SCENES = {  # colour and captions made only of the tiny BLIP-2's vocabulary (rs5m.ml.blip2)
    "forest": ((40, 110, 40), ["many green trees in the forest", "a forest with many trees",
               "green trees near a road", "an aerial view of the forest", "some trees and a meadow"]),
    "lake": ((30, 70, 150), ["a lake near the green trees", "a pond in the meadow", "the lake with a beach",
             "an aerial view of a lake", "a river and a lake"]),
    "desert": ((200, 170, 110), ["a desert near the mountain", "an aerial view of the desert",
               "the desert with a road", "a road in the desert", "some fields near the desert"]),
    "parking": ((120, 120, 120), ["a parking lot with many cars", "cars in the parking lot",
                "some cars near the buildings", "a parking lot near a road", "many cars and two buildings"]),
}  # fmt: skip


def _texture(rng: np.random.Generator, size: int, colour: tuple[int, int, int]) -> Image.Image:
    img = np.asarray(colour, dtype=np.float32) + rng.normal(0, 20, (size, size, 3))
    period = int(rng.integers(4, max(5, size // 3)))
    img[(np.arange(size) // period) % 2 == 0] *= 0.8
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _real(folder: Path, split: str, n: int) -> list[tuple[str, list[str]]]:
    caps = _lines(str(folder / f"{split}_caps.txt"), None)
    names = _lines(str(folder / f"{split}_filename.txt"), None)
    k = len(caps) // len(names) if len(caps) != len(names) else 1
    per: dict[str, list[str]] = {}
    for i, cap in enumerate(caps):
        per.setdefault(names[i // k] if k > 1 else names[i], []).append(cap)
    return list(per.items())[:n]


def write_fixture(spec: FixtureSpec) -> tuple[CaptionSplit, CaptionSplit]:
    """Write an RSITMD-layout train/test set with generated images; return its two splits.

    Train: ``train_filename.txt`` one name per image, ``train_caps.txt`` 5 lines per image (the real
    RSITMD train layout); test: line-aligned ``test_caps.txt``/``test_filename.txt``; ``images/*.tif``.
    Captions are the real RSITMD ones (first images of each split) when ``real_captions`` is set, else
    scene captions in the tiny model's vocabulary (one colour per scene, so there is something to learn).
    Idempotent: same spec, same bytes.
    """
    out = Path(spec.out)
    rng = np.random.default_rng(spec.seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    scenes = list(_SCENES)
    for split, n in (("train", spec.n_train), ("test", spec.n_test)):
        if spec.real_captions:
            items = _real(Path(spec.real_captions), split, n)
            looks = [_SCENES[scenes[i % len(scenes)]][0] for i in range(len(items))]
        else:
            items, looks = [], []
            for i in range(n):
                scene = scenes[i % len(scenes)]
                items.append((f"{scene}_{split}_{i}.tif", list(_SCENES[scene][1])))
                looks.append(_SCENES[scene][0])
        for (name, _), colour in zip(items, looks, strict=True):
            _texture(rng, spec.image_size, colour).save(out / "images" / name)
        caps = [c for _, cs in items for c in cs]
        if split == "train" and all(len(cs) == 5 for _, cs in items):
            names = [name for name, _ in items]
        else:
            names = [name for name, cs in items for _ in cs]
        (out / f"{split}_caps.txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
        (out / f"{split}_filename.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return tuple(  # type: ignore[return-value]
        CaptionSplit(captions=str(out / f"{s}_caps.txt"), filenames=str(out / f"{s}_filename.txt"),
                     images=str(out / "images"))
        for s in ("train", "test")
    )  # fmt: skip
