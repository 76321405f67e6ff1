"""Synthetic inputs for bench/dedup.py: uniform 64-bit hashes with planted near duplicates, and a
clustering table (uid, source, url, sha256, phash) with URL and content duplicates on top."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rs5m.core.schema import SOURCE_ORDER

# Downloaded counts per source in the RS5M funnel (README table), used as source weights.
DOWNLOADED = [1_737_584, 566_076, 2_549_738, 241_324, 93_754, 25_020, 16_234, 2_686, 11_718, 91, 26]
# Planted near-duplicate distances: re-encodes/resizes (0-4 bits) and slight crops (4-8), as measured
# on WHU-RS19 variants (see docs/benchmarks.md).
PLANTED_DIST = np.array([0, 0, 2, 2, 2, 4, 4, 6, 6, 8])


def synthetic_hashes(n: int, near_frac: float, seed: int, dists: np.ndarray = PLANTED_DIST) -> np.ndarray:
    """Uniform random 64-bit hashes; a ``near_frac`` share are copies of others with up to ``dists`` bits
    flipped (drawn uniformly from ``dists``)."""
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64)
    k = int(n * near_frac)
    dst = rng.choice(n, k, replace=False)
    src = rng.integers(0, n, k)
    flips = np.zeros(k, dtype=np.uint64)
    dist = rng.choice(dists, k)
    for d in range(1, dist.max(initial=0) + 1):
        sel = dist >= d
        flips[sel] ^= np.uint64(1) << rng.integers(0, 64, sel.sum()).astype(np.uint64)
    h[dst] = h[src] ^ flips
    return h


def _hex_strings(raw: np.ndarray) -> pa.Array:
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.stack([digits[raw >> 4], digits[raw & 15]], axis=-1).reshape(len(raw), -1)
    offsets = np.arange(len(raw) + 1, dtype=np.int32) * chars.shape[1]
    return pa.StringArray.from_buffers(len(raw), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def synthetic_table(n: int, seed: int = 0) -> pa.Table:
    """The clustering input at size ``n`` (see module doc)."""
    rng = np.random.default_rng(seed)
    ids = pa.array(np.arange(n))
    weights = np.array(DOWNLOADED) / sum(DOWNLOADED)
    source = pa.array(SOURCE_ORDER).take(pa.array(rng.choice(len(SOURCE_ORDER), n, p=weights)))
    uid = pc.binary_join_element_wise(source, pc.cast(ids, pa.string()), "-")
    url_id = np.arange(n)
    dup = rng.choice(n, n // 20, replace=False)
    url_id[dup] = rng.integers(0, n, len(dup))
    url = pc.binary_join_element_wise(
        "http://img", pc.cast(pa.array(url_id), pa.string()), ".example/a.jpg", ""
    )
    content = np.arange(n)
    dup = rng.choice(n, n // 20, replace=False)
    content[dup] = rng.integers(0, n, len(dup))
    raw = np.random.default_rng(seed + 1).integers(0, 256, (n, 32), dtype=np.uint8)[content]
    phash = synthetic_hashes(n, 0.10, seed + 2)[content]
    return pa.table({"uid": uid, "source": source, "url": url, "sha256": _hex_strings(raw), "phash": phash})
