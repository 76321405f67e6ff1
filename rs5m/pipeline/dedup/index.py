"""Radius search over 64-bit perceptual hashes by multi-index hashing (MIH), plus connected components.

Contract:
- ``near_pairs(hashes, threshold)`` yields chunks ``(i, j)`` of row indices with ``i != j`` and
  ``popcount(hashes[i] ^ hashes[j]) <= threshold``; every such unordered pair of *distinct hash values*
  appears at least once (exact recall, by the pigeonhole argument below). Rows with equal hashes are
  not paired here: ``near_components`` joins them directly.
- ``near_components(hashes, threshold)`` returns a component label per row (the smallest row index of
  its component), so equal labels mean "linked by a chain of pairs within the threshold".

Why MIH: the 64 bits are cut into ``m`` blocks; if two hashes differ in at most ``t`` bits, some block
differs in at most ``r = ceil((t + 1) / m) - 1`` bits. Each block is indexed by a CSR table (or a sorted
array for wide blocks), and every row probes its own block value XOR each mask of at most ``r`` bits.
The work is bucket probes (occupied buckets times ``V(b, r)`` masks) plus candidate pairs (about
``n**2 / 2 * m * V(b, r) / 2**b`` for uniform hashes); the plan picks ``m`` minimising it, so the search
stays exact at any threshold while its cost grows steeply with the threshold (measured in bench/dedup.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from math import comb

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

CHUNK = 1 << 22  # candidate pairs verified per numpy pass: bounds the temporary arrays to ~200 MB
CSR_MAX_BITS = 24  # blocks up to this width get a direct bucket table (2**24 * 12 B = 200 MB at most)


@dataclass(frozen=True)
class MihPlan:
    """Block widths (summing to 64, least significant block first) and the probe radius per block."""

    widths: tuple[int, ...]
    radius: int

    def cost(self, n: int) -> float:
        """Modelled work in verified-pair units: bucket probes (about twice as dear) plus candidate pairs."""
        total = 0.0
        for b in self.widths:
            probes = 2.0**b * -np.expm1(-n / 2.0**b) * (_ball(b, self.radius) - 1) / 2
            total += 2 * probes + n * n / 2 * _ball(b, self.radius) / 2.0**b
        return total


def _ball(bits: int, radius: int) -> int:
    return sum(comb(bits, k) for k in range(radius + 1))


def _widths(m: int) -> tuple[int, ...]:
    base, extra = divmod(64, m)
    return tuple(base + (1 if k < extra else 0) for k in range(m))


def plan_search(n: int, threshold: int) -> MihPlan:
    """Return the cheapest exact plan for ``n`` distinct hashes and a Hamming ``threshold`` (0..63)."""
    if not 0 <= threshold < 64:
        raise ValueError(f"threshold must be in 0..63, got {threshold}")
    plans = []
    for m in range(2, min(threshold + 1, 16) + 1):
        radius = -(-(threshold + 1) // m) - 1
        plans.append(MihPlan(_widths(m), radius))
    if threshold == 0:
        plans.append(MihPlan(_widths(2), 0))
    return min(plans, key=lambda p: p.cost(max(n, 1)))


def _buckets(sorted_vals: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Occupied block values (ascending) with the start and size of their run in ``sorted_vals``."""
    edge = np.flatnonzero(np.diff(sorted_vals)) + 1
    starts = np.concatenate(([0], edge)).astype(np.int64)
    sizes = np.diff(np.concatenate((starts, [len(sorted_vals)])))
    return sorted_vals[starts], starts, sizes


class _BucketTable:
    """Block value -> (start, size) of its run: a direct table for narrow blocks, binary search otherwise."""

    def __init__(self, uvals: np.ndarray, starts: np.ndarray, sizes: np.ndarray, bits: int) -> None:
        self.uvals, self.direct = uvals, bits <= CSR_MAX_BITS
        if self.direct:
            self.start = np.zeros(1 << bits, dtype=np.int64)
            self.size = np.zeros(1 << bits, dtype=np.int32)
            self.start[uvals], self.size[uvals] = starts, sizes
        else:
            self.start, self.size = starts, sizes

    def lookup(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (indices into ``q`` that hit an occupied bucket, run starts, run sizes) for those hits."""
        if self.direct:
            hit = np.flatnonzero(self.size[q])
            qh = q[hit]
            return hit, self.start[qh], self.size[qh].astype(np.int64)
        k = np.minimum(np.searchsorted(self.uvals, q), len(self.uvals) - 1)
        hit = np.flatnonzero(self.uvals[k] == q)
        return hit, self.start[k[hit]], self.size[k[hit]].astype(np.int64)


def _expand(a: np.ndarray, lo: np.ndarray, cnt: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (a repeated, lo + 0..cnt-1) in chunks of about CHUNK pairs."""
    if len(cnt) and cnt.min() > 0 and cnt.max() == 1:  # the common case at low bucket occupancy
        for s in range(0, len(cnt), CHUNK):
            yield a[s : s + CHUNK], lo[s : s + CHUNK]
        return
    keep = cnt > 0
    a, lo, cnt = a[keep], lo[keep], cnt[keep]
    ends = np.cumsum(cnt)
    start = 0
    while start < len(cnt):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + CHUNK, "right")), start + 1)
        c = cnt[start:stop]
        rep = np.repeat(np.arange(stop - start), c)
        first = np.cumsum(c) - c
        yield a[start:stop][rep], lo[start:stop][rep] + (np.arange(len(rep)) - first[rep])
        start = stop


def _verified(sh: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    ok = np.bitwise_count(sh[a] ^ sh[b]) <= threshold
    return a[ok], b[ok]


def _masks_by_top_bit(bits: int, radius: int) -> list[list[int]]:
    """XOR masks of 1..radius bits, grouped by their highest set bit."""
    groups: list[list[int]] = [[] for _ in range(bits)]
    for k in range(1, radius + 1):
        for pos in itertools.combinations(range(bits), k):
            groups[pos[-1]].append(sum(1 << p for p in pos))
    return groups


def _rows_of(
    hit: np.ndarray, start: np.ndarray, size: np.ndarray, lo: np.ndarray, cnt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand bucket-level hits to one entry per row of the probing bucket."""
    sz = size[hit]
    rows = np.repeat(np.arange(len(hit)), sz)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(sz) - sz, sz)
    return start[hit][rows] + offset, lo[rows], cnt[rows]


def _block_pairs(
    sh: np.ndarray, vals: np.ndarray, bits: int, radius: int, threshold: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (positions in sorted order) whose block values differ in at most ``radius`` bits.

    Probes go per occupied bucket, not per row (at millions of rows most buckets hold several rows),
    and only from the bucket whose value has a 0 at the mask's top bit, so each bucket pair is seen once.
    """
    uvals, starts, sizes = _buckets(vals, bits)
    table = _BucketTable(uvals, starts, sizes, bits)
    pos = np.arange(len(vals), dtype=np.int64)
    run_end = np.repeat(starts + sizes, sizes)
    for a, b in _expand(pos, pos + 1, run_end - pos - 1):  # same bucket: each unordered pair once
        yield _verified(sh, a, b, threshold)
    for top, masks in enumerate(_masks_by_top_bit(bits, radius)):
        low = np.flatnonzero((uvals >> top) & 1 == 0)
        base, base_start, base_size = uvals[low], starts[low], sizes[low]
        single = bool(base_size.max(initial=1) == 1)
        for mask in masks:
            hit, lo, cnt = table.lookup(base ^ base.dtype.type(mask))
            if single:
                a = base_start[hit]
            else:  # every row of the probing bucket meets the whole probed run
                a, lo, cnt = _rows_of(hit, base_start, base_size, lo, cnt)
            for pa_, pb in _expand(a, lo, cnt):
                yield _verified(sh, pa_, pb, threshold)


def near_pairs(
    hashes: np.ndarray, threshold: int, plan: MihPlan | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield chunks of index pairs of *distinct* hash values within ``threshold`` bits (see module doc)."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    if threshold == 0:  # distinct values are at least 1 bit apart
        return
    plan = plan or plan_search(len(h), threshold)
    shift = 0
    for bits in plan.widths:
        dtype = np.uint32 if bits <= 32 else np.uint64
        vals = ((h >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(dtype)
        order = np.argsort(vals, kind="stable")
        sv, sh = vals[order], h[order]
        for a, b in _block_pairs(sh, sv, bits, plan.radius, threshold):
            diff = sh[a] != sh[b]
            yield order[a[diff]], order[b[diff]]
        shift += bits


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n, dtype=np.int64))
    return first[labels]


def near_components(hashes: np.ndarray, threshold: int, plan: MihPlan | None = None) -> np.ndarray:
    """Label each row with the smallest row index of its component (pairs within ``threshold`` bits)."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    if len(h) == 0:
        return np.empty(0, dtype=np.int64)
    uniq, inverse = np.unique(h, return_inverse=True)
    ei, ej = [], []
    pending = 0
    for a, b in near_pairs(uniq, threshold, plan):
        ei.append(a)
        ej.append(b)
        pending += len(a)
        if pending > 4 * CHUNK:  # dense data: fold edges into a spanning star to bound memory
            star = _components(len(uniq), np.concatenate(ei), np.concatenate(ej))
            linked = np.flatnonzero(star != np.arange(len(uniq)))
            ei, ej, pending = [linked], [star[linked]], len(linked)
    i = np.concatenate(ei) if ei else np.empty(0, np.int64)
    j = np.concatenate(ej) if ej else np.empty(0, np.int64)
    uniq_label = _components(len(uniq), i, j)
    # map unique-hash components back to rows; relabel by the smallest row index
    row_comp = uniq_label[inverse.ravel()]
    first = np.full(len(uniq), len(h), dtype=np.int64)
    np.minimum.at(first, row_comp, np.arange(len(h), dtype=np.int64))
    return first[row_comp]


def brute_force_pairs(hashes: np.ndarray, threshold: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``i < j`` within ``threshold`` bits, by exhaustive comparison (the recall reference)."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64)
    out_i, out_j = [], []
    for s in range(0, len(h), block):
        d = np.bitwise_count(h[s : s + block, None] ^ h[None, :])
        a, b = np.nonzero(d <= threshold)
        a += s
        keep = a < b
        out_i.append(a[keep])
        out_j.append(b[keep])
    return np.concatenate(out_i), np.concatenate(out_j)
