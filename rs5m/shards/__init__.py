"""Final packaging of kept samples into webdataset shards, their manifest, and the training loader.

- ``assign_split`` / ``split_keys``: deterministic ~5 % validation split by dedup cluster (else uid).
- ``write_shards`` / ``ShardWriter``: ``{subset}-{split}-NNNN.tar`` in the ``rs5m`` or ``open_clip``
  layout, byte-deterministic, atomic, each shard's manifest entry written last.
- ``write_manifest`` / ``verify_manifest`` / ``verify_subset``: per-version ``manifest.json`` (counts,
  bytes, sha256; sealed with a checksum of its own content) and its checks against the shards.
- ``make_loader``: DataLoader over shards of any layout (incl. the released RS5M tars).

The loader and preprocess names import torch, so they load lazily on first access: packaging code
that only writes shards does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from rs5m.config import PackageConfig
from rs5m.config.package import LAYOUTS, Layout
from rs5m.shards.layouts import Record, make_key
from rs5m.shards.manifest import ShardInfo, read_manifest, verify_manifest, verify_subset, write_manifest
from rs5m.shards.split import assign_split, split_keys, split_keys_of, split_names
from rs5m.shards.tario import expand_urls, iter_records
from rs5m.shards.writer import Sample, ShardWriter, shard_name, write_shards

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "LAYOUTS",
    "ClipPreprocess",
    "Layout",
    "PackageConfig",
    "Record",
    "Sample",
    "ShardDataset",
    "ShardInfo",
    "ShardWriter",
    "assign_split",
    "expand_urls",
    "iter_records",
    "make_key",
    "make_loader",
    "read_manifest",
    "reference_clip_transform",
    "shard_name",
    "split_keys",
    "split_keys_of",
    "split_names",
    "verify_manifest",
    "verify_subset",
    "write_manifest",
    "write_shards",
]

_LAZY = {
    "ShardDataset": "rs5m.shards.loader",
    "make_loader": "rs5m.shards.loader",
    "CLIP_MEAN": "rs5m.shards.preprocess",
    "CLIP_STD": "rs5m.shards.preprocess",
    "ClipPreprocess": "rs5m.shards.preprocess",
    "reference_clip_transform": "rs5m.shards.preprocess",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
