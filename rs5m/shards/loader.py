"""Training loader over RS5M shards: shard split by node and worker, shuffle buffer, decode,
CLIP preprocess and batch collation all inside DataLoader workers.

Contract:
- Reads the ``rs5m``, ``open_clip`` and ``legacy`` layouts, detected per sample (``layout="auto"``)
  or fixed; only the image and caption members are touched.
- Without ``resampled``, each epoch every shard goes to exactly one (node, worker) pair: shards are
  permuted by ``(seed, epoch)`` (identically on every node), then taken round-robin by node rank and
  then by worker id, so each sample is seen once per epoch across the whole job. With fewer shards
  than nodes x workers some workers get none; give at least that many shards.
- With ``resampled=True`` every worker draws shards with replacement forever (seeded per node,
  worker and epoch); bound the epoch in the training loop.
- Batches are ``(images, texts)``: images a float Tensor[B,3,S,S] (uint8 with ``normalize=False``);
  texts a list of str, or the tokenizer's output for that list. The last batch of a worker may be
  smaller unless ``partial=False``.
- ``shuffle_buffer <= 1`` turns all shuffling off (shards and samples in file order).
- Samples that are incomplete or undecodable are skipped and logged (rate-limited) unless
  ``skip_errors=False``; an unreadable shard (truncated tar, missing file) raises.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.utils import pytorch_worker_info

from rs5m.shards.layouts import Record, to_record
from rs5m.shards.preprocess import CLIP_MEAN, CLIP_STD, ClipPreprocess
from rs5m.shards.tario import expand_urls, iter_shard_samples

log = logging.getLogger(__name__)
Batch = tuple[torch.Tensor, Any]
_LOG_FIRST, _LOG_EVERY = 10, 1000
_END = object()
READ_LAYOUTS = ("auto", "rs5m", "open_clip", "legacy")


def shuffle_buffer_iter(
    items: Iterable[Any], bufsize: int, rng: random.Random, initial: int
) -> Iterator[Any]:
    """Shuffle a stream through a buffer of up to ``bufsize`` items.

    Nothing is yielded until ``initial`` items are buffered; the buffer then keeps growing by one
    item per item yielded until it holds ``bufsize``. ``bufsize <= 1`` passes the stream through.
    """
    if bufsize <= 1:
        yield from items
        return
    it = iter(items)
    buf: list[Any] = []
    for item in it:
        buf.append(item)
        if len(buf) < bufsize:
            nxt = next(it, _END)
            if nxt is not _END:
                buf.append(nxt)
        if len(buf) >= initial:
            k = rng.randrange(len(buf))
            buf[k], buf[-1] = buf[-1], buf[k]
            yield buf.pop()
    rng.shuffle(buf)
    yield from buf


class ShardDataset(IterableDataset):
    """Iterable of ready batches; see the module docstring for the contract.

    Call ``set_epoch`` before each epoch (as with ``DistributedSampler``) to reshuffle shard order
    and buffers. Each further pass over the same object in one process (persistent workers, or
    ``num_workers=0``) also advances the effective epoch, so no epoch silently repeats an order.
    """

    def __init__(
        self,
        urls_or_dir: Any,
        layout: str = "auto",
        batch_size: int = 256,
        shuffle_buffer: int = 10_000,
        preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
        tokenizer: Callable[[list[str]], Any] | None = None,
        seed: int = 0,
        resampled: bool = False,
        image_size: int = 224,
        draft: bool = True,
        partial: bool = True,
        skip_errors: bool = True,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if layout not in READ_LAYOUTS:
            raise ValueError(f"layout must be one of {READ_LAYOUTS}, got {layout!r}")
        self.urls = expand_urls(urls_or_dir)
        self.layout, self.batch_size, self.shuffle_buffer = layout, batch_size, shuffle_buffer
        self.custom_preprocess, self.tokenizer = preprocess, tokenizer
        self.fast = ClipPreprocess(image_size, CLIP_MEAN, CLIP_STD, draft=draft)
        self.seed, self.resampled, self.partial, self.skip_errors = seed, resampled, partial, skip_errors
        self.normalize = normalize
        self.epoch = 0
        self._passes = 0
        self.n_errors = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shard permutation and shuffle seeds the next iteration uses."""
        self.epoch = epoch

    def _info(self) -> tuple[int, int, int, int]:
        """(rank, world size, worker, workers) that split the shards; subclasses may remap workers."""
        return pytorch_worker_info()

    def shard_urls(self, epoch: int) -> Iterator[str]:
        """Shards this (node, worker) reads in ``epoch``, in order."""
        rank, world, worker, n_workers = self._info()
        if self.resampled:
            rng = random.Random(f"{self.seed}/{epoch}/{rank}/{worker}/shards")
            while True:
                yield rng.choice(self.urls)
        urls = list(self.urls)
        if self.shuffle_buffer > 1:
            random.Random(f"{self.seed}/{epoch}/shards").shuffle(urls)
        yield from islice(islice(urls, rank, None, world), worker, None, n_workers)

    def records(self, epoch: int) -> Iterator[tuple[str, dict[str, bytes]]]:
        """Raw grouped samples of this worker's shards in ``epoch``, after the shuffle buffer."""
        rank, _, worker, _ = self._info()
        raw = (s for url in self.shard_urls(epoch) for s in iter_shard_samples(url))
        rng = random.Random(f"{self.seed}/{epoch}/{rank}/{worker}/samples")
        return shuffle_buffer_iter(raw, self.shuffle_buffer, rng, min(self.shuffle_buffer, 1000))

    def _decode(self, key: str, members: dict[str, bytes]) -> tuple[Any, str] | None:
        try:
            rec: Record = to_record(key, members, self.layout)
            if self.custom_preprocess is None:
                image: Any = self.fast.decode(rec.image)
            else:
                image = self.custom_preprocess(self.fast.open(rec.image))
            return image, rec.caption
        except Exception as exc:  # the loader's per-sample error boundary
            if not self.skip_errors:
                raise
            self.n_errors += 1
            if self.n_errors <= _LOG_FIRST or self.n_errors % _LOG_EVERY == 0:
                log.warning("skipping sample %s (%d skipped so far): %s", key, self.n_errors, exc)
            return None

    def _collate(self, images: list[Any], texts: list[str]) -> Batch:
        shared = get_worker_info() is not None
        if self.custom_preprocess is None:
            batch = self.fast.to_batch(images, shared=shared, normalize=self.normalize)
        else:
            batch = torch.stack(images)
        return batch, (self.tokenizer(texts) if self.tokenizer is not None else texts)

    def __iter__(self) -> Iterator[Batch]:
        epoch = self.epoch + self._passes
        self._passes += 1
        images: list[Any] = []
        texts: list[str] = []
        for key, members in self.records(epoch):
            decoded = self._decode(key, members)
            if decoded is None:
                continue
            images.append(decoded[0])
            texts.append(decoded[1])
            if len(images) == self.batch_size:
                yield self._collate(images, texts)
                images, texts = [], []
        if images and self.partial:
            yield self._collate(images, texts)


def make_loader(
    urls_or_dir: Any,
    layout: str = "auto",
    batch_size: int = 256,
    num_workers: int = 4,
    shuffle_buffer: int = 10_000,
    preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
    tokenizer: Callable[[list[str]], Any] | None = None,
    seed: int = 0,
    resampled: bool = False,
    *,
    image_size: int = 224,
    draft: bool = True,
    partial: bool = True,
    skip_errors: bool = True,
    normalize: bool = True,
    pin_memory: bool | None = None,
    prefetch_factor: int = 2,
    persistent_workers: bool = False,
) -> DataLoader:
    """A DataLoader yielding ``(images Tensor[B,3,S,S], texts)`` batches built in its workers.

    ``preprocess=None`` uses the built-in CLIP eval transform (``image_size``, CLIP mean/std) with
    the fast path; ``draft=False`` makes it bit-identical to ``reference_clip_transform``. A custom
    ``preprocess`` (PIL image -> Tensor[3,S,S], e.g. open_clip's train transform) is applied per
    image instead. ``normalize=False`` (built-in path only) yields uint8 images, 4x fewer bytes
    through shared memory; finish them with ``ClipPreprocess().normalize(images.cuda())``.
    ``pin_memory`` defaults to whether CUDA is available. See ``ShardDataset``.
    """
    dataset = ShardDataset(
        urls_or_dir,
        layout=layout,
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        preprocess=preprocess,
        tokenizer=tokenizer,
        seed=seed,
        resampled=resampled,
        image_size=image_size,
        draft=draft,
        partial=partial,
        skip_errors=skip_errors,
        normalize=normalize,
    )
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        persistent_workers=persistent_workers and num_workers > 0,
    )
