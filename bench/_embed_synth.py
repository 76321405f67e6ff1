"""Synthetic image embeddings for bench/dedup.py --method embedding: unit vectors with topic structure and
planted near duplicates at known cosine similarities, generated one partition at a time.

Each row is ``normalise(a * mu + b * topic + c * noise)`` (one shared direction ``mu``, as CLIP embeddings
share one; ``n_topics`` topic directions), so unrelated rows sit near cos 0.15 and rows of one topic near
cos 0.5. In each partition a ``dup_frac`` share of rows are copies of another row of the same partition
(possibly itself a copy, so chains occur) at a cosine drawn from ``PLANTED_SIMS``:
``s * x + sqrt(1 - s**2) * u`` with ``u`` a unit vector orthogonal to ``x``. Sources follow the RS5M
download counts, so clusters span sources and the priority rule decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench._dedup_synth import DOWNLOADED
from rs5m.core.schema import SOURCE_ORDER

# Above and below the default threshold 0.96 (never on it: float16 storage moves a cosine by ~1e-3).
PLANTED_SIMS = np.array([1.0, 0.995, 0.99, 0.98, 0.97, 0.965, 0.955, 0.94, 0.92, 0.90], dtype=np.float64)
CHAIN_FRAC = 0.2  # share of copies made from an earlier copy (chains)
MIX = (0.45**0.5, 0.35**0.5, 0.2**0.5)  # weights of mu, topic, noise (squares sum to 1)


@dataclass(frozen=True)
class SynthSpec:
    """Size and structure of a synthetic set; partition ``p`` is a pure function of (spec, p)."""

    n: int
    dim: int = 512
    part_rows: int = 50_000
    n_topics: int = 10_000
    dup_frac: float = 0.10
    seed: int = 0

    @property
    def n_parts(self) -> int:
        return -(-self.n // self.part_rows)

    def rows(self, p: int) -> int:
        return min(self.part_rows, self.n - p * self.part_rows)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _topics(spec: SynthSpec) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([spec.seed, 0])
    mu = _unit(rng.standard_normal(spec.dim).astype(np.float32))
    return mu, _unit(rng.standard_normal((spec.n_topics, spec.dim), dtype=np.float32))


@dataclass
class SynthPart:
    """One partition: float16 unit rows, uids, sources, and the planted pairs (local row indices)."""

    vectors: np.ndarray
    uids: list[str]
    sources: list[str]
    copy_rows: np.ndarray
    src_rows: np.ndarray
    sims: np.ndarray


def make_part(spec: SynthSpec, p: int, _cache: dict = {}) -> SynthPart:  # noqa: B006 - per-process cache
    """Partition ``p`` of ``spec`` (deterministic)."""
    key = (spec.seed, spec.dim, spec.n_topics)
    if key not in _cache:
        _cache.clear()
        _cache[key] = _topics(spec)
    mu, topics = _cache[key]
    m = spec.rows(p)
    rng = np.random.default_rng([spec.seed, 1, p])
    a, b, c = MIX
    # random signs: isotropic enough for noise and ~10x cheaper than normal draws at 2.5e9 values
    signs = np.unpackbits(rng.integers(0, 256, (m, spec.dim // 8), dtype=np.uint8), axis=1)
    noise = (signs.astype(np.float32) * 2 - 1) / np.float32(np.sqrt(spec.dim))
    x = a * mu + b * topics[rng.integers(0, spec.n_topics, m)] + c * noise
    x = _unit(x)
    k = int(m * spec.dup_frac)
    copy_rows = np.sort(rng.choice(np.arange(1, m), k, replace=False)) if m > 1 else np.empty(0, np.int64)
    # a copy's source is an earlier row that is not a copy itself, or (CHAIN_FRAC) an earlier copy:
    # two vectorised rounds give chains A ~ B ~ C without ever copying a row not yet final
    originals = np.setdiff1d(np.arange(m), copy_rows)
    src_rows = originals[(rng.random(k) * np.searchsorted(originals, copy_rows)).astype(np.int64)]
    chained = rng.random(k) < CHAIN_FRAC
    first_round = ~chained
    prior = np.flatnonzero(first_round)
    if len(prior):
        chained &= np.searchsorted(copy_rows[prior], copy_rows) > 0
        pick = (rng.random(k) * np.searchsorted(copy_rows[prior], copy_rows)).astype(np.int64)
        src_rows = np.where(chained, copy_rows[prior][np.minimum(pick, len(prior) - 1)], src_rows)
    first_round = ~chained
    sims = rng.choice(PLANTED_SIMS, k)
    for sel in (first_round, chained):
        base = x[src_rows[sel]]
        u = rng.standard_normal(base.shape, dtype=np.float32)
        u = _unit(u - (u * base).sum(1, keepdims=True) * base)
        cos = sims[sel, None].astype(np.float32)
        x[copy_rows[sel]] = cos * base + np.sqrt(1 - cos * cos) * u
    weights = np.array(DOWNLOADED) / sum(DOWNLOADED)
    src_idx = rng.choice(len(SOURCE_ORDER), m, p=weights)
    sources = [SOURCE_ORDER[i] for i in src_idx]
    start = p * spec.part_rows
    uids = [f"{s}-{start + i:012d}" for i, s in enumerate(sources)]
    return SynthPart(x.astype(np.float16), uids, sources, copy_rows, src_rows, sims.astype(np.float32))
