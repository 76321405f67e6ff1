"""Deterministic train/validation split by a seeded hash of the dedup cluster id (else the uid).

Contract:
- ``assign_split(keys, val_fraction, seed)`` depends only on each key's text and the seed: the same
  key always gets the same split, whatever the row order, partitioning or machine.
- Rows of one duplicate cluster share a split key (``split_keys``), so an image and its duplicates
  never straddle train and val.
- The val share converges to ``val_fraction`` per subset and per source (each row is an independent
  hash draw), which is the paper's "5 % evenly per subset".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SCALE = float(1 << 64)


def split_keys(
    uid: pa.Array | pa.ChunkedArray, cluster: pa.Array | pa.ChunkedArray | None = None
) -> pa.Array:
    """Split key per row: the dedup cluster id (as text) where present, else the uid.

    A cluster whose id is the uid of its kept member therefore hashes like that member.
    """
    uid = _as_array(uid).cast(pa.string())
    if uid.null_count:
        raise ValueError("uid column has nulls")
    if cluster is None:
        return uid
    cluster = _as_array(cluster).cast(pa.string())
    if len(cluster) != len(uid):
        raise ValueError(f"cluster length {len(cluster)} != uid length {len(uid)}")
    return pc.coalesce(cluster, uid)


def split_keys_of(table: pa.Table, uid_col: str = "uid", cluster_col: str = "dup_cluster") -> pa.Array:
    """``split_keys`` from a table's columns; the cluster column is optional."""
    cluster = table.column(cluster_col) if cluster_col in table.column_names else None
    return split_keys(table.column(uid_col), cluster)


def hash_unit(keys: pa.Array | pa.ChunkedArray | Sequence[str], seed: int) -> np.ndarray:
    """Map each key to a float in [0, 1) by keyed BLAKE2b; stable across Python runs and platforms."""
    salt = str(seed).encode()
    values = keys.to_pylist() if isinstance(keys, (pa.Array, pa.ChunkedArray)) else list(keys)
    out = np.empty(len(values), dtype=np.float64)
    for i, k in enumerate(values):
        if k is None:
            raise ValueError(f"null split key at row {i}")
        digest = hashlib.blake2b(str(k).encode("utf-8", "surrogatepass"), digest_size=8, key=salt).digest()
        out[i] = int.from_bytes(digest, "big") / _SCALE
    return out


def assign_split(
    uid_or_cluster: pa.Array | pa.ChunkedArray | Sequence[str], val_fraction: float, seed: int
) -> np.ndarray:
    """Boolean array, ``True`` where the row goes to validation.

    ``uid_or_cluster`` holds the split key per row (see ``split_keys``); rows with equal keys always
    get the same value.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    return hash_unit(uid_or_cluster, seed) < val_fraction


def split_names(is_val: np.ndarray) -> pa.Array:
    """``"val"``/``"train"`` strings for a boolean split array (for a ``split`` column)."""
    return pa.array(np.where(is_val, "val", "train"), pa.string())


def _as_array(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
