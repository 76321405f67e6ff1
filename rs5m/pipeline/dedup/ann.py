"""k nearest neighbours of every row among all rows (a self-join), by inner product, with FAISS.

Contract of ``self_knn(x, k, threshold, cfg)``:
- ``x``: ``[n, d]`` unit-norm rows (float16 or float32, read-only; float16 halves the memory of 5 M x 512).
- Returns ``KnnResult``: every pair ``(i, j)``, ``i != j``, where ``j`` is among the ``k`` most similar rows
  to ``i`` that the search compared (all rows for the exact plan) and ``sim >= threshold``; plus each row's
  most similar other row and its similarity (``nn``/``nn_sim``; -1 / NaN when none was compared), a score
  kept whatever the threshold.
- Exact plan (``n <= exact_max_rows`` or ``kind="exact"``): FAISS brute force (BLAS), query blocks of
  ``chunk_rows``. IVF plan: two-level spherical k-means (``cells / fine_per_coarse`` top cells, each split
  into fine cells in proportion to its share of the sample; a fine cell expected to hold over
  ``max_cell_factor x cell_rows`` rows is split again) gives ~``n / cell_rows`` cells; every row lives in
  its best cell (found among the fine cells of its ``coarse_probe`` best top cells) and is compared with
  the rows living in its ``nprobe`` best cells.

Why list by list and not ``IndexIVF.search``: searching query by query streams every probed list once per
query, memory-bound; taking each cell in turn and matching all rows that probe it against the rows living
in it is one dense BLAS product per cell (the strategy of ``faiss.contrib.big_batch_search``). Tried
first here (docs/benchmarks.md): ``IndexIVFScalarQuantizer`` (float16 codes, HNSW coarse quantizer, 2,048
lists, nprobe 4) took 89 s to add 500 k rows and ~175 s to search them all, more than this whole join at
200 k rows (other loads on the machine: an indication, not a controlled comparison). The contrib function
needs the queries as a separate float32 array (10 GB at 5 M x 512), so the cells are gathered here from
the one float16 array. A near duplicate sits close to its original, so both mostly land in each other's
probed cells; recall against brute force is measured in tests and in bench/dedup.py. Probing several top
cells (``coarse_probe``) matters most: rows split at the top level are otherwise never compared. Many small
top cells (20 fine cells each, not ``sqrt(cells)``): a top cell mixing hundreds of unrelated clusters barely
tells rows apart, so rows missed their best fine cell (docs/benchmarks.md has the measurements).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from rs5m.config.stages import EmbeddingIndexConfig

IP = faiss.METRIC_INNER_PRODUCT


@dataclass(frozen=True)
class SearchPlan:
    """``exact``: one cell holding every row; ``ivf``: ``n_coarse`` top cells split into ``n_cells``."""

    kind: str
    n_cells: int
    n_coarse: int
    nprobe: int
    coarse_probe: int


@dataclass
class KnnResult:
    """Linked pairs (row indices, ``i != j``) with their similarity, and each row's best neighbour."""

    i: np.ndarray
    j: np.ndarray
    sim: np.ndarray
    nn: np.ndarray
    nn_sim: np.ndarray
    plan: SearchPlan


def plan_search(n: int, cfg: EmbeddingIndexConfig) -> SearchPlan:
    """Exact below ``exact_max_rows`` (or when asked), else an IVF plan sized by ``cell_rows``."""
    if cfg.kind == "exact" or (cfg.kind == "auto" and n <= cfg.exact_max_rows) or n < 2:
        return SearchPlan("exact", 1, 1, 1, 1)
    n_cells = max(2, min(round(n / cfg.cell_rows), n // 4))
    n_coarse = max(1, min(n_cells, round(n_cells / cfg.fine_per_coarse)))
    return SearchPlan("ivf", n_cells, n_coarse, min(cfg.nprobe, n_cells), min(cfg.coarse_probe, n_coarse))


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _kmeans(x: np.ndarray, k: int, cfg: EmbeddingIndexConfig, seed: int) -> np.ndarray:
    if k <= 1 or len(x) <= k:
        c = x[: max(1, min(k, len(x)))].copy() if k > 1 else x.mean(0, keepdims=True)
        return c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    km = faiss.Kmeans(
        x.shape[1], k, niter=cfg.kmeans_iters, spherical=True, seed=seed, verbose=False,
        min_points_per_centroid=1, max_points_per_centroid=1 << 30,
    )  # fmt: skip
    km.train(x)
    return km.centroids


@dataclass
class TwoLevelQuantizer:
    """Top centroids, fine centroids grouped by top cell (``fine_start`` offsets), and the probe widths."""

    coarse: np.ndarray
    fine: np.ndarray
    fine_start: np.ndarray
    nprobe: int
    coarse_probe: int
    margin: float

    def assign(self, q: np.ndarray) -> np.ndarray:
        """``[m, nprobe]`` fine cells per row, best first, -1 past the last probed one.

        A cell is probed when its centroid is within ``margin`` (cosine) of the row's best one, at both
        levels: a near duplicate's similarity to any centroid differs from its original's by little, so
        only rows near a border need a second look. One pass per top cell over every (row, slot) that
        probes it: one BLAS product each, not one per slot.
        """
        m, p = len(q), self.nprobe
        top, near = self._top_cells(q)
        # each probed top cell offers its p best fine cells; the row keeps the p best of all offers
        sims = np.full((m, self.coarse_probe * p), -np.inf, dtype=np.float32)
        ids = np.zeros(sims.shape, dtype=np.int32)
        flat = np.flatnonzero(near.ravel())  # (row, slot) pairs probed, as row * coarse_probe + slot
        cells = top.ravel()[flat]
        order = np.argsort(cells, kind="stable")
        bounds = np.searchsorted(cells[order], np.arange(len(self.coarse) + 1))
        for c in np.flatnonzero(np.diff(bounds)):
            pairs = flat[order[bounds[c] : bounds[c + 1]]]
            rows, slot = pairs // self.coarse_probe, pairs % self.coarse_probe
            lo, hi = self.fine_start[c], self.fine_start[c + 1]
            local = q[rows] @ self.fine[lo:hi].T
            pick = _top(local, min(p, hi - lo))
            cols = slot[:, None] * p + np.arange(pick.shape[1])
            sims[rows[:, None], cols] = np.take_along_axis(local, pick, 1)
            ids[rows[:, None], cols] = pick + lo
        best = _top(sims, min(p, sims.shape[1]))
        out = np.take_along_axis(ids, best, 1)
        chosen = np.take_along_axis(sims, best, 1)
        out[(chosen == -np.inf) | (chosen < chosen[:, :1] - self.margin)] = -1
        return out

    def _top_cells(self, q: np.ndarray, block: int = 16_384) -> tuple[np.ndarray, np.ndarray]:
        """The ``coarse_probe`` best top cells per row and whether each is within ``margin`` of the best;
        in row blocks, as rows x top cells in float32 is large (0.25 GB per 65,536 rows x 1,000 cells)."""
        tops, nears = [], []
        for s in range(0, len(q), block):
            sims = q[s : s + block] @ self.coarse.T
            top = _top(sims, self.coarse_probe)
            nears.append(np.take_along_axis(sims, top, 1) >= sims.max(1, keepdims=True) - self.margin)
            tops.append(top)
        return np.concatenate(tops), np.concatenate(nears)


def _top(s: np.ndarray, p: int) -> np.ndarray:
    """Column indices of the ``p`` largest entries per row, best first (ties: lowest index first when
    ``p <= 8``; above, in argpartition's order)."""
    if p == 1:
        return s.argmax(1)[:, None]
    if p <= 8 and p < s.shape[1]:
        # a few argmax passes are several times faster than argpartition for small p; -inf entries are
        # raised to the lowest finite value so a taken column (set to -inf) is never taken twice
        work, rows = np.maximum(s, np.finfo(s.dtype).min), np.arange(len(s))
        out = np.empty((len(s), p), dtype=np.int64)
        for r in range(p):
            out[:, r] = work.argmax(1)
            work[rows, out[:, r]] = -np.inf
        return out
    if p < s.shape[1]:
        part = np.argpartition(s, s.shape[1] - p, axis=1)[:, s.shape[1] - p :]
    else:
        part = np.broadcast_to(np.arange(s.shape[1]), s.shape)
    order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def _split_big(
    members: np.ndarray, cents: np.ndarray, scale: float, cfg: EmbeddingIndexConfig, seed: int
) -> np.ndarray:
    """Replace every centroid whose cell would hold more than ``max_cell_factor x cell_rows`` rows (sample
    count x ``scale``) by k-means centroids of its own members. Why: the join costs a cell's rows times the
    rows probing it, so a few oversized cells (k-means leaves whole natural clusters together) dominate it."""
    cap = cfg.max_cell_factor * cfg.cell_rows
    own = (members @ cents.T).argmax(1)
    out = []
    for f in range(len(cents)):
        mine = members[own == f]
        parts = int(np.ceil(len(mine) * scale / cfg.cell_rows))
        if len(mine) * scale > cap and parts > 1 and len(mine) >= 2 * parts:
            out.append(_kmeans(mine, parts, cfg, seed + 7919 * (f + 1)))
        else:
            out.append(cents[f : f + 1])
    return np.concatenate(out)


def train_quantizer(
    x: np.ndarray, rows: np.ndarray, plan: SearchPlan, cfg: EmbeddingIndexConfig, seed: int = 0
) -> TwoLevelQuantizer:
    """Two-level spherical k-means on a sample of ``cfg.train_rows`` of the ``rows`` of ``x``; fine cells
    expected to hold over ``cfg.max_cell_factor`` x ``cell_rows`` rows are split."""
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(rows, min(len(rows), cfg.train_rows), replace=False))
    sample = _f32(x[pick])
    scale = len(rows) / len(sample)
    coarse = _kmeans(sample, plan.n_coarse, cfg, seed)
    step = cfg.chunk_rows  # in blocks: sample x top cells as one float32 matrix is 0.5 GB at 5 M rows
    owner = np.concatenate([(sample[s : s + step] @ coarse.T).argmax(1) for s in range(0, len(sample), step)])
    fine, start = [], [0]
    for c in range(len(coarse)):
        members = sample[owner == c]
        share = max(1, round(plan.n_cells * len(members) / len(sample)))
        if len(members):
            cents = _kmeans(members, min(share, max(1, len(members) // 4)), cfg, seed + c + 1)
            cents = _split_big(members, cents, scale, cfg, seed + c)
        else:
            cents = coarse[c : c + 1]
        fine.append(cents)
        start.append(start[-1] + len(cents))
    fine_all = _f32(np.concatenate(fine))
    return TwoLevelQuantizer(
        coarse, fine_all, np.asarray(start), plan.nprobe, plan.coarse_probe, cfg.probe_margin
    )


def _knn_fn(cfg: EmbeddingIndexConfig):
    """FAISS brute-force k-NN on a GPU when one is there (and allowed), else on the CPU (BLAS)."""
    if cfg.gpu == "auto" and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        res = faiss.StandardGpuResources()  # not exercised on the CPU-only test machines
        return lambda q, b, k: faiss.knn_gpu(res, q, b, k, metric=IP)
    return lambda q, b, k: faiss.knn(q, b, k, metric=IP)


class _Collector:
    """Per-row best neighbour, and candidate pairs at or above the threshold (top ``k`` per probe)."""

    def __init__(self, n: int, k: int, threshold: float) -> None:
        self.k, self.threshold = k, threshold
        self.nn = np.full(n, -1, dtype=np.int64)
        self.nn_sim = np.full(n, -np.inf, dtype=np.float32)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, q_rows: np.ndarray, db_rows: np.ndarray, d: np.ndarray, ix: np.ndarray) -> None:
        ok = ix >= 0
        nb = np.where(ok, db_rows[np.maximum(ix, 0)], -1)
        d = np.where(ok & (nb != q_rows[:, None]), d, -np.inf).astype(np.float32)
        order = np.argsort(-d, axis=1, kind="stable")[:, : self.k]  # self dropped, k kept
        d, nb = np.take_along_axis(d, order, 1), np.take_along_axis(nb, order, 1)
        better = d[:, 0] > self.nn_sim[q_rows]
        self.nn_sim[q_rows[better]], self.nn[q_rows[better]] = d[better, 0], nb[better, 0]
        r, c = np.nonzero(d >= self.threshold)
        if len(r):
            self.parts.append((q_rows[r], nb[r, c], d[r, c]))

    def result(self, plan: SearchPlan) -> KnnResult:
        if self.parts:
            i, j, s = (np.concatenate(a) for a in zip(*self.parts, strict=True))
        else:
            i, j, s = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        # a row probes several cells: keep its k best pairs over all of them (each pair is seen once)
        order = np.lexsort((-s, i))
        i, j, s = i[order], j[order], s[order]
        first = np.searchsorted(i, i)
        keep = (np.arange(len(i)) - first) < self.k
        nn_sim = np.where(self.nn >= 0, self.nn_sim, np.nan).astype(np.float32)
        return KnnResult(i[keep], j[keep], s[keep], self.nn, nn_sim, plan)


def _groups(keys: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions sorted by key, bounds) so group g is ``order[bounds[g]:bounds[g + 1]]``."""
    order = np.argsort(keys, kind="stable")
    return order, np.searchsorted(keys[order], np.arange(n_groups + 1))


def self_knn(
    x: np.ndarray,
    k: int,
    threshold: float,
    cfg: EmbeddingIndexConfig,
    seed: int = 0,
    active: np.ndarray | None = None,
) -> KnnResult:
    """The thresholded k-NN self-join of ``x`` (see the module contract), over the ``active`` rows only
    when given (the others are never compared); indices in the result are rows of ``x``."""
    rows = np.arange(len(x)) if active is None else np.asarray(active, dtype=np.int64)
    plan = plan_search(len(rows), cfg)
    out = _Collector(len(x), k, threshold)
    knn = _knn_fn(cfg)
    if len(rows) < 2:
        return out.result(plan)
    if plan.kind == "exact":
        base = _f32(x[rows])
        for s in range(0, len(rows), cfg.chunk_rows):
            d, ix = knn(base[s : s + cfg.chunk_rows], base, min(k + 1, len(rows)))
            out.add(rows[s : s + cfg.chunk_rows], rows, d, ix)
        return out.result(plan)
    quant = train_quantizer(x, rows, plan, cfg, seed)
    n_cells = len(quant.fine)
    probes = np.empty((len(rows), quant.nprobe), dtype=np.int32)
    for s in range(0, len(rows), cfg.chunk_rows):
        probes[s : s + cfg.chunk_rows] = quant.assign(_f32(x[rows[s : s + cfg.chunk_rows]]))
    home_order, home_bounds = _groups(probes[:, 0], n_cells)
    flat = probes.ravel()
    valid = np.flatnonzero(flat >= 0)
    probe_order, probe_bounds = _groups(flat[valid], n_cells)
    probe_rows = rows[valid[probe_order] // quant.nprobe]
    home_rows = rows[home_order]
    del flat, valid, probe_order, probes, home_order
    for c in range(n_cells):
        db_rows = home_rows[home_bounds[c] : home_bounds[c + 1]]
        if not len(db_rows):
            continue
        base = _f32(x[db_rows])
        queries = probe_rows[probe_bounds[c] : probe_bounds[c + 1]]
        for s in range(0, len(queries), cfg.chunk_rows):
            q = queries[s : s + cfg.chunk_rows]
            d, ix = knn(_f32(x[q]), base, min(k + 1, len(db_rows)))
            out.add(q, db_rows, d, ix)
    return out.result(plan)
