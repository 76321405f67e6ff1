"""CLIP image preprocessing for the shard loader: an exact fast path and the reference transform.

``reference_clip_transform`` is OpenAI CLIP's eval transform (Resize shorter side, bicubic;
CenterCrop; RGB; ToTensor; Normalize) built from torchvision, as the RS5M reference loader uses it.

``ClipPreprocess`` produces the same tensor in two steps: ``decode`` (bytes -> cropped uint8
Tensor[3,S,S], run per sample in a worker) and ``to_batch`` (uint8 images -> normalised float batch
written straight into shared memory, so the DataLoader sends it without another copy).

- ``draft=False`` (``ClipPreprocess``'s default): PIL all the way, bit-identical to the reference.
- ``draft=True`` (``make_loader``'s default): a JPEG at least twice the target size on both sides is
  decoded by libjpeg's DCT scaling at 1/2, 1/4 or 1/8 (never below the target), then resized to the
  size, and cropped to the window, the reference computes from the original size; an RGB one that
  scales evenly is resized by torch's SIMD uint8 antialiased bicubic (PIL's filter to within 2
  levels), the rest by PIL over the original's exact extent. Decode + resize cost drops ~2.5x on
  600x600 JPEGs and more on larger ones, at a mean difference of ~1 grey level (numbers in
  docs/benchmarks.md). Other images take the exact path.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BICUBIC = T.InterpolationMode.BICUBIC


def _to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def reference_clip_transform(
    size: int = 224, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
) -> Callable[[Image.Image], torch.Tensor]:
    """OpenAI CLIP's eval preprocess (``clip.load(...)[1]``) for a PIL image -> float Tensor[3,S,S]."""
    return T.Compose(
        [
            T.Resize(size, interpolation=_BICUBIC),
            T.CenterCrop(size),
            _to_rgb,
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )


def resized_size(size: tuple[int, int], short: int) -> tuple[int, int]:
    """(w, h) after torchvision's ``Resize(short)``: shorter side to ``short``, longer truncated."""
    w, h = size
    if w <= h:
        return short, int(short * h / w)
    return int(short * w / h), short


def empty_shared(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uninitialised tensor in shared memory, allocated the way DataLoader's default collate does."""
    elem = torch.empty(0, dtype=dtype)
    storage = elem._typed_storage()._new_shared(math.prod(shape), device=elem.device)
    return elem.new(storage).resize_(shape)


class ClipPreprocess:
    """Decode + CLIP preprocess split into a per-sample ``decode`` and a per-batch ``to_batch``.

    ``decode`` opens encoded bytes with PIL and returns the resized, centre-cropped RGB image as a
    uint8 Tensor[3, size, size]; ``to_batch`` stacks these into a normalised float
    Tensor[B, 3, size, size] using the reference's op order (x / 255 - mean) / std.
    """

    def __init__(
        self,
        size: int = 224,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        draft: bool = False,
    ) -> None:
        self.size, self.draft = size, draft
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def open(self, data: bytes) -> Image.Image:
        """Open encoded bytes lazily (no draft: custom transforms get the full-resolution image)."""
        return Image.open(io.BytesIO(data))

    def decode(self, data: bytes) -> torch.Tensor:
        """Encoded image bytes -> uint8 Tensor[3, size, size] (any strides); raises if undecodable."""
        image = self.open(data)
        target = resized_size(image.size, self.size)  # from the original size, before any draft
        box = self._draft(image)
        if box is not None and image.mode == "RGB" and box[2:] == image.size:
            return self._resize_tensor(image, target)
        if box is None:
            image = F.resize(image, self.size, _BICUBIC)
        else:
            # the drafted image is the original at 1/k plus a partial edge pixel: resize exactly the
            # original's extent, so geometry and crop match the reference
            image = image.resize(target, Image.Resampling.BICUBIC, box=box)
        # same order as the reference: resize and crop before the RGB conversion
        image = F.center_crop(image, self.size)
        if image.mode != "RGB":
            image = image.convert("RGB")
        return torch.from_numpy(np.array(image)).permute(2, 0, 1)

    def _resize_tensor(self, image: Image.Image, target: tuple[int, int]) -> torch.Tensor:
        """Resize a drafted RGB image to ``target`` (w, h) with torch and centre-crop like torchvision."""
        # an HWC array viewed as NCHW is channels-last, the layout torch's uint8 SIMD kernel wants
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1).unsqueeze(0)
        w, h = target
        y = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", antialias=True)[0]
        top, left = int(round((h - self.size) / 2.0)), int(round((w - self.size) / 2.0))
        return y[:, top : top + self.size, left : left + self.size]

    def _draft(self, image: Image.Image) -> tuple[float, float, float, float] | None:
        """Switch a JPEG to DCT-scaled decoding; return the original's box in drafted pixels, if scaled."""
        if not self.draft or image.format != "JPEG":
            return None
        original = image.size
        result = image.draft(image.mode, (self.size, self.size))
        if not result or image.size == original:
            return None
        return result[1]

    def to_batch(
        self, images: Sequence[torch.Tensor], shared: bool = False, normalize: bool = True
    ) -> torch.Tensor:
        """Stack ``decode`` outputs (uint8 [3,S,S]) into Tensor[B,3,S,S], in shared memory if ``shared``.

        ``normalize=True`` gives the reference float tensor; ``False`` gives uint8 (a quarter of the
        bytes to move), to be finished later with ``normalize`` (e.g. on the GPU).
        """
        shape = (len(images), 3, self.size, self.size)
        dtype = torch.float32 if normalize else torch.uint8
        out = empty_shared(shape, dtype) if shared else torch.empty(shape, dtype=dtype)
        for i, chw in enumerate(images):
            # per image, while its slice is still in cache: (x / 255 - mean) / std, the reference's order
            if normalize:
                torch.div(chw.contiguous(), 255, out=out[i])
                out[i].sub_(self.mean).div_(self.std)
            else:
                out[i].copy_(chw)
        return out

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 Tensor[B,3,S,S] -> the normalised float batch, bit-identical to ``to_batch``'s."""
        mean, std = self.mean.to(batch.device), self.std.to(batch.device)
        return batch.to(torch.float32).div_(255).sub_(mean).div_(std)

    def __call__(self, data: bytes) -> torch.Tensor:
        """One encoded image -> float Tensor[3,S,S] (convenience; the loader uses decode/to_batch)."""
        return self.to_batch([self.decode(data)])[0]
