"""The inverted file behind the embedding dedup: the top-p selection, the two-level assignment against its
definition, and the splitting of oversized cells."""

from __future__ import annotations

import numpy as np

from rs5m.config.stages import EmbeddingIndexConfig
from rs5m.pipeline.dedup.ann import _top, plan_search, train_quantizer

DIM = 32


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_top_is_the_p_largest_best_first_and_never_repeats_a_column() -> None:
    s = np.random.default_rng(0).standard_normal((500, 40)).astype(np.float32)
    for p in (1, 3, 8, 12):
        assert (_top(s, p) == np.argsort(-s, axis=1, kind="stable")[:, :p]).all()
    s[:, 2:] = -np.inf  # rows with fewer real entries than p: the rest are distinct -inf columns
    top = _top(s, 5)
    assert all(len(set(r)) == 5 for r in top.tolist())
    assert set(top[:, :2].ravel().tolist()) <= {0, 1}


def _quantizer(x: np.ndarray, **over: object) -> tuple[object, EmbeddingIndexConfig]:
    cfg = EmbeddingIndexConfig(kind="ivf", cell_rows=32, train_rows=len(x), **over)
    return train_quantizer(x, np.arange(len(x)), plan_search(len(x), cfg), cfg), cfg


def test_assign_is_the_best_fine_cells_of_the_best_top_cells() -> None:
    x = _unit(np.random.default_rng(1).standard_normal((4000, DIM)))
    quant, cfg = _quantizer(x, nprobe=3, coarse_probe=4, fine_per_coarse=6)
    got = quant.assign(x)
    coarse = np.argsort(-(x @ quant.coarse.T), axis=1, kind="stable")[:, : cfg.coarse_probe]
    fine = x @ quant.fine.T
    for r in range(0, len(x), 97):
        allowed = np.concatenate([np.arange(quant.fine_start[c], quant.fine_start[c + 1]) for c in coarse[r]])
        want = allowed[np.argsort(-fine[r, allowed], kind="stable")[: cfg.nprobe]]
        assert got[r].tolist() == want.tolist()


def test_margin_leaves_far_cells_unprobed() -> None:
    x = _unit(np.random.default_rng(2).standard_normal((3000, DIM)))
    quant, _ = _quantizer(x, nprobe=4, coarse_probe=3, probe_margin=0.02)
    got = quant.assign(x)
    assert (got[:, 0] >= 0).all() and (got[:, 1:] == -1).any()
    sims = x @ quant.fine.T
    best = np.take_along_axis(sims, got[:, :1], 1)[:, 0]
    probed = got >= 0
    assert (
        np.take_along_axis(sims, np.maximum(got, 0), 1)[probed] >= np.repeat(best, 4)[probed.ravel()] - 0.02
    ).all()


def test_oversized_cells_are_split() -> None:
    rng = np.random.default_rng(3)
    centres = _unit(rng.standard_normal((12, DIM)))
    sizes = [3000] + [100] * 11  # one cluster holds most rows: k-means gives it few cells
    x = _unit(
        np.concatenate(
            [c + 0.4 * rng.standard_normal((s, DIM)) / DIM**0.5 for c, s in zip(centres, sizes, strict=True)]
        )
    )
    largest = {}
    for factor in (1.5, 1000.0):
        quant, _ = _quantizer(x, max_cell_factor=factor, fine_per_coarse=4)
        largest[factor] = np.bincount(quant.assign(x)[:, 0]).max()
    assert largest[1.5] < largest[1000.0]
    assert largest[1.5] <= 4 * 32
