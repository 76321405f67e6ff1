"""Training data with a resumable position: webdataset shards (any layout) or RSICD/RSITMD-style CSVs.

``TrainData.batches(epoch, state)`` yields ``(images, tokens, state_after)`` for this rank. Given the
same seed, worker count and world size, the batch sequence of an epoch is fixed, and passing a
``state_after`` back resumes with exactly the batch that followed it:

- Shards: the loader's own shard assignment and shuffle buffer (``rs5m.shards.ShardDataset``), seeded
  by ``(seed, epoch, rank, worker)``. The state holds how many raw records each DataLoader worker had
  pulled from its shuffled stream (undecodable ones included) and which worker is due next. On resume
  each worker skips its count without decoding, and workers take each other's roles rotated so that
  DataLoader's round-robin starts with the worker that was due: the interleaving is unchanged.
- CSV: a permutation of all rows seeded by ``(seed, epoch)``, cut into global batches (rank ``r`` takes
  slice ``r`` of each); the state is the offset into the permutation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from webdataset.utils import pytorch_worker_info

from rs5m.config.train import CsvSource, DataConfig
from rs5m.ml.models import eval_preprocess
from rs5m.shards.loader import ShardDataset
from rs5m.shards.manifest import entry_path, read_entry
from rs5m.shards.tario import expand_urls, iter_shard_samples

log = logging.getLogger(__name__)
Batch = tuple[torch.Tensor, torch.Tensor, dict[str, Any]]


def shard_urls(data: DataConfig) -> list[str]:
    """The training shards: a directory restricted to ``*-{split}-*.tar`` when ``split`` is set."""
    assert data.shards is not None
    src = data.shards
    if data.split and "::" not in src and Path(src).is_dir():
        urls = sorted(str(p) for p in Path(src).glob(f"*-{data.split}-*.tar"))
        if not urls:
            raise ValueError(f"no *-{data.split}-*.tar shards in {src}")
        return urls
    return expand_urls(src)


def _entry_count(entry: Path) -> int | None:
    """The sample count of a shard's manifest entry, or ``None`` when the entry fails its checksum."""
    try:
        return read_entry(entry).n_samples
    except ValueError as exc:
        log.warning("%s", exc)
        return None


def count_samples(urls: list[str]) -> int:
    """Samples in ``urls``: from each shard's manifest entry when present, else by reading the tar."""
    total = 0
    for url in urls:
        entry = entry_path(Path(url).parent, Path(url).name)
        n = _entry_count(entry) if "://" not in url and entry.is_file() else None
        if n is not None:
            total += n
        else:
            log.warning("no manifest entry for %s: counting its samples (set data.num_samples to skip)", url)
            total += sum(1 for _ in iter_shard_samples(url))
    return total


def data_version(data: DataConfig) -> str | None:
    """The dataset version: ``data.version``, else the ``version`` of the shard folder's manifest.json."""
    if data.version or data.shards is None:
        return data.version
    folder = Path(data.shards.split("::")[0])
    manifest = (folder if folder.is_dir() else folder.parent) / "manifest.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text(encoding="utf-8")).get("version")
        except (OSError, json.JSONDecodeError):
            return None
    return None


class ResumableShards(ShardDataset):
    """``ShardDataset`` whose batches carry ``(virtual worker, records pulled)`` and that can skip ahead.

    ``consumed[v]`` records are skipped by virtual worker ``v``; real worker ``w`` plays virtual worker
    ``(w + rotate) % n_workers``.
    """

    def __init__(self, *args: Any, consumed: list[int] | None = None, rotate: int = 0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.consumed, self.rotate = consumed, rotate

    def _info(self) -> tuple[int, int, int, int]:
        rank, world, worker, n_workers = pytorch_worker_info()
        return rank, world, (worker + self.rotate) % n_workers, n_workers

    def __iter__(self) -> Iterator[tuple[torch.Tensor, Any, tuple[int, int]]]:
        worker = self._info()[2]
        skip = self.consumed[worker] if self.consumed else 0
        stream = self.records(self.epoch)
        n = sum(1 for _ in islice(stream, skip))
        images: list[Any] = []
        texts: list[str] = []
        for key, members in stream:
            n += 1
            decoded = self._decode(key, members)
            if decoded is not None:
                images.append(decoded[0])
                texts.append(decoded[1])
            if len(images) == self.batch_size:
                batch, tokens = self._collate(images, texts)
                yield batch, tokens, (worker, n)
                images, texts = [], []


class CsvPairs(Dataset):
    """Image-caption rows of one or more ``filename,title`` CSVs; items are ``(image tensor, caption)``."""

    def __init__(self, sources: list[CsvSource], preprocess: Callable[[Image.Image], torch.Tensor]) -> None:
        self.rows: list[tuple[str, str]] = []
        for src in sources:
            df = pd.read_csv(src.csv, encoding=src.encoding, dtype=str, keep_default_na=False)
            missing = {src.filename_col, src.caption_col} - set(df.columns)
            if missing:
                raise ValueError(f"{src.csv}: missing columns {sorted(missing)}")
            folder = Path(src.images_dir)
            self.rows += [
                (str(folder / f), c) for f, c in zip(df[src.filename_col], df[src.caption_col], strict=True)
            ]
        if not self.rows:
            raise ValueError("the CSV sources have no rows")
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        path, caption = self.rows[i]
        with Image.open(path) as img:
            return self.preprocess(img), caption


class TrainData:
    """This rank's view of the training data; see the module docstring for the position contract."""

    def __init__(
        self, cfg: DataConfig, batch_size: int, seed: int, image_size: int, norm: str, tokenizer: Any
    ) -> None:
        self.cfg, self.batch_size, self.seed = cfg, batch_size, seed
        self.image_size, self.norm, self.tokenizer = image_size, norm, tokenizer
        self.rank, self.world = pytorch_worker_info()[:2]
        if cfg.shards is not None:
            self.urls = shard_urls(cfg)
            self.n_samples = cfg.num_samples or count_samples(self.urls)
            self.pairs: CsvPairs | None = None
        else:
            self.urls = []
            self.pairs = CsvPairs(cfg.csv, eval_preprocess(image_size, norm))
            self.n_samples = cfg.num_samples or len(self.pairs)

    def batches(self, epoch: int, state: dict[str, Any] | None = None) -> Iterator[Batch]:
        """This rank's batches of ``epoch`` after ``state`` (``None`` = from the start)."""
        if self.pairs is not None:
            return self._csv_batches(epoch, state)
        return self._shard_batches(epoch, state)

    def _n_workers(self) -> int:
        return max(1, self.cfg.workers)

    def _shard_batches(self, epoch: int, state: dict[str, Any] | None) -> Iterator[Batch]:
        n_workers = self._n_workers()
        consumed = list(state["consumed"]) if state else [0] * n_workers
        if len(consumed) != n_workers:
            raise ValueError(f"resume needs data.workers={len(consumed)} (checkpoint), got {n_workers}")
        rotate = state["next"] if state else 0
        preprocess = None if self.norm == "clip" else eval_preprocess(self.image_size, self.norm)
        dataset = ResumableShards(
            self.urls,
            layout=self.cfg.layout,
            batch_size=self.batch_size,
            shuffle_buffer=self.cfg.shuffle_buffer,
            preprocess=preprocess,
            tokenizer=self.tokenizer,
            seed=self.seed,
            image_size=self.image_size,
            partial=False,
            consumed=consumed,
            rotate=rotate,
        )
        dataset.set_epoch(epoch)
        for images, tokens, (worker, n) in self._loader(dataset, batch_size=None):
            consumed[worker] = n
            yield images, tokens, {"consumed": list(consumed), "next": (worker + 1) % n_workers}

    def _csv_batches(self, epoch: int, state: dict[str, Any] | None) -> Iterator[Batch]:
        assert self.pairs is not None
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        perm = torch.randperm(len(self.pairs), generator=gen).tolist()
        step = self.batch_size * self.world
        offset = state["offset"] if state else 0
        starts = range(offset, len(perm) - step + 1, step)
        index_batches = [perm[s + self.rank * self.batch_size :][: self.batch_size] for s in starts]
        loader = self._loader(self.pairs, batch_sampler=index_batches, collate_fn=self._collate_pairs)
        for start, (images, tokens) in zip(starts, loader, strict=True):
            yield images, tokens, {"offset": start + step}

    def _collate_pairs(self, items: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.stack([i for i, _ in items]), self.tokenizer([c for _, c in items])

    def _loader(self, dataset: Any, **kw: Any) -> DataLoader:
        workers = self.cfg.workers
        return DataLoader(
            dataset,
            num_workers=workers,
            pin_memory=torch.cuda.is_available(),
            prefetch_factor=4 if workers > 0 else None,
            **kw,
        )
