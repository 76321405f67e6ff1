"""Semantic (embedding) near-duplicates: pairs at known cosines, threshold, components, priority keeper,
chaining after pHash decisions, memory bound of loading, exact vs IVF recall."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rs5m.config.stages import DedupConfig, EmbeddingIndexConfig
from rs5m.pipeline.dedup.ann import plan_search, self_knn
from rs5m.pipeline.dedup.cluster import cluster_duplicates, priority_rank
from rs5m.pipeline.dedup.embedding import (
    SEMANTIC_SCHEMA,
    EmbeddingPart,
    combine_decisions,
    find_semantic_duplicates,
    load_embeddings,
    scoring_parts,
)

DIM = 32


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _at_cos(base: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at exactly ``cos`` from unit ``base``."""
    u = rng.standard_normal(base.shape)
    u = _unit(u - (u @ base) * base)
    return cos * base + np.sqrt(1 - cos * cos) * u


def _random(n: int, seed: int = 0) -> np.ndarray:
    return _unit(np.random.default_rng(seed).standard_normal((n, DIM)))


def _cfg(**kw: object) -> DedupConfig:
    return DedupConfig(embedding_threshold=0.96, **kw)


def _by_uid(table: pa.Table) -> dict[str, dict]:
    return {r["uid"]: r for r in table.to_pylist()}


def test_planted_pairs_found_at_and_above_threshold_only() -> None:
    rng = np.random.default_rng(1)
    x = _random(200)
    sims = [1.0, 0.99, 0.97, 0.961, 0.959, 0.95, 0.90]
    planted = np.stack([_at_cos(x[i], s, rng) for i, s in enumerate(sims)])
    vecs = np.concatenate([x, planted]).astype(np.float32)
    uids = [f"cc12m-{i:04d}" for i in range(len(vecs))]
    out = find_semantic_duplicates([EmbeddingPart(uids, "cc12m", vecs)], _cfg())
    assert out.schema == SEMANTIC_SCHEMA and out.num_rows == len(vecs)
    rows = _by_uid(out)
    for k, s in enumerate(sims):
        a, b = uids[k], uids[200 + k]
        linked = rows[a]["dup_cluster"] is not None and rows[a]["dup_cluster"] == rows[b]["dup_cluster"]
        assert linked == (s >= 0.96), (s, rows[a], rows[b])
        assert rows[b]["emb_nn_uid"] == a and rows[b]["emb_nn_sim"] == pytest.approx(s, abs=2e-3)
    dropped = [r for r in rows.values() if not r["dup_keep"]]
    assert len(dropped) == 4 and {r["dup_reason"] for r in dropped} == {"semantic_duplicate"}
    alone = [r for u, r in rows.items() if u not in {uids[k] for k in range(4)} and r["dup_keep"]]
    assert all(r["dup_cluster"] is None and r["dup_keeper_uid"] is None for r in alone)


def test_keeper_follows_the_priority_rule_and_chains_link() -> None:
    rng = np.random.default_rng(2)
    x = _random(50, seed=3)
    a, w = x[0], _at_cos(x[0], 0.0, rng)
    theta = np.arccos(0.98)
    b, c = (np.cos(t) * a + np.sin(t) * w for t in (theta, 2 * theta))
    assert b @ c == pytest.approx(0.98) and a @ c < 0.93  # A ~ B ~ C; A and C are not within the threshold
    d = _at_cos(x[1], 0.99, rng)
    vecs = np.concatenate([x, [b, c, d]]).astype(np.float32)
    sources = ["cc12m"] * 50 + ["laion2b", "laioncoco", "laion400m"]
    sources[0], sources[1] = "laioncoco", "wit"
    uids = [f"{s}-{i:04d}" for i, s in enumerate(sources)]
    rows = _by_uid(find_semantic_duplicates([EmbeddingPart(uids, sources, vecs)], _cfg()))
    chain = [uids[0], uids[50], uids[51]]
    assert len({rows[u]["dup_cluster"] for u in chain}) == 1
    assert rows[chain[0]]["dup_cluster"] == min(chain)
    assert [rows[u]["dup_keep"] for u in chain] == [False, True, False]  # laion2b beats laioncoco
    assert all(rows[u]["dup_keeper_uid"] == uids[50] for u in chain)
    assert rows[uids[52]]["dup_keep"] and not rows[uids[1]]["dup_keep"]  # laion400m preferred over wit


def test_one_source_keeper_is_priority_ranks_pick_and_deterministic() -> None:
    rng = np.random.default_rng(4)
    x = _random(30, seed=5)
    group = np.stack([x[0], _at_cos(x[0], 0.99, rng), _at_cos(x[0], 0.985, rng)])
    vecs = np.concatenate([x[1:], group]).astype(np.float32)
    uids = [f"yfcc15m-{i:03d}" for i in range(len(vecs))]
    part = EmbeddingPart(uids, "yfcc15m", vecs)
    first = find_semantic_duplicates([part], _cfg())
    assert first.equals(find_semantic_duplicates([part], _cfg()))
    members = pa.chunked_array([pa.array(uids[-3:])])
    rank = priority_rank(members, pa.chunked_array([pa.array(["yfcc15m"] * 3)]), _cfg())
    rows = _by_uid(first)
    assert [rows[u]["dup_keep"] for u in uids[-3:]] == list(rank == 0)


def test_empty_inputs_zero_rows_and_exclude() -> None:
    empty = find_semantic_duplicates([], _cfg())
    assert empty.num_rows == 0 and empty.schema == SEMANTIC_SCHEMA
    none = find_semantic_duplicates([EmbeddingPart([], "sbu", np.zeros((0, DIM), np.float16))], _cfg())
    assert none.num_rows == 0
    x = _random(3).astype(np.float32)
    x[2] = 0  # a placeholder row (undecodable image): never linked
    vecs = np.concatenate([x, [x[0], np.zeros(DIM, np.float32)]])
    uids = ["vg-a", "vg-b", "vg-c", "vg-d", "vg-e"]
    rows = _by_uid(find_semantic_duplicates([EmbeddingPart(uids, "vg", vecs)], _cfg()))
    assert rows["vg-c"]["dup_keep"] and rows["vg-c"]["emb_nn_sim"] is None and rows["vg-e"]["dup_keep"]
    assert rows["vg-a"]["dup_cluster"] == rows["vg-d"]["dup_cluster"] == "vg-a"
    kept = find_semantic_duplicates([EmbeddingPart(uids, "vg", vecs)], _cfg(), exclude=pa.array(["vg-d"]))
    assert "vg-d" not in _by_uid(kept) and all(kept.column("dup_keep").to_pylist())
    with pytest.raises(ValueError, match="unique"):
        find_semantic_duplicates([EmbeddingPart(uids, "vg", vecs)] * 2, _cfg())


def test_scoring_parts_read_the_scoring_layout(tmp_path: Path) -> None:
    x = _random(6)
    x[5] = _at_cos(x[0], 0.99, np.random.default_rng(6))
    for source, rows in (("cc3m", slice(0, 3)), ("redcaps", slice(3, 6))):
        folder = tmp_path / source
        folder.mkdir()
        np.save(folder / "00000.npy", x[rows].astype(np.float16))
        np.save(folder / "00000.uids.npy", np.array([f"{source}-{i}" for i in range(3)], dtype=str))
    parts = scoring_parts(tmp_path)
    assert [p.source for p in parts] == ["cc3m", "redcaps"]
    rows = _by_uid(find_semantic_duplicates(parts, _cfg()))
    assert rows["redcaps-2"]["dup_cluster"] == "cc3m-0" and rows["cc3m-0"]["source"] == "cc3m"
    assert len(scoring_parts(tmp_path, sources=["cc3m"])) == 1


def test_loading_is_chunked_memory_bounded(tmp_path: Path) -> None:
    n, dim = 20_000, 64
    path = tmp_path / "p.npy"
    np.save(path, np.random.default_rng(7).standard_normal((n, dim), dtype=np.float32))
    part = EmbeddingPart([f"cc12m-{i}" for i in range(n)], "cc12m", path)
    store = n * dim * 2
    peaks = {}
    for chunk in (512, n):
        tracemalloc.start()
        data = load_embeddings([part], chunk_rows=chunk)
        peaks[chunk] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert data.vectors.shape == (n, dim) and data.vectors.dtype == np.float16
    assert peaks[512] < store + 1_500_000  # the float16 store plus a few small blocks
    assert peaks[n] > store + n * dim * 4  # what a single block would cost: the bound is real


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((40, DIM)))
    x = _unit(centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM)) / np.sqrt(DIM))
    for r in rng.choice(n, n // 10, replace=False):
        x[r] = _at_cos(x[rng.integers(0, n)], rng.choice([0.999, 0.99, 0.98, 0.97]), rng)
    return x.astype(np.float16)


def _pairs(res: object) -> set[tuple[int, int]]:
    lo, hi = np.minimum(res.i, res.j).tolist(), np.maximum(res.i, res.j).tolist()
    return set(zip(lo, hi, strict=True))


def test_ivf_recall_against_exact_and_no_false_pairs() -> None:
    x = _clustered(6000, 8)
    exact = self_knn(x, 5, 0.96, EmbeddingIndexConfig(kind="exact"))
    ivf_cfg = EmbeddingIndexConfig(kind="ivf", cell_rows=64, nprobe=4, coarse_probe=3, train_rows=6000)
    approx = self_knn(x, 5, 0.96, ivf_cfg)
    assert exact.plan.kind == "exact" and approx.plan.kind == "ivf" and approx.plan.n_cells > 50
    truth, found = _pairs(exact), _pairs(approx)
    assert len(truth) > 300
    assert len(found & truth) / len(truth) >= 0.97
    assert found <= truth  # similarities are exact: the index only ever misses, never invents
    assert (approx.sim >= 0.96).all() and (approx.i != approx.j).all()
    assert np.nanmax(approx.nn_sim) <= 1.001
    active = np.arange(0, 6000, 2)  # rows left out are never compared, indices stay rows of x
    half = self_knn(x, 5, 0.96, ivf_cfg, active=active)
    assert np.isin(np.concatenate([half.i, half.j]), active).all() and np.isnan(half.nn_sim[1::2]).all()


def test_plan_switches_to_ivf_above_the_exact_limit() -> None:
    cfg = EmbeddingIndexConfig(exact_max_rows=1000, cell_rows=100)
    assert plan_search(1000, cfg).kind == "exact"
    big = plan_search(100_000, cfg)
    assert big.kind == "ivf" and big.n_cells == 1000 and big.n_coarse == 50  # fine_per_coarse 20
    assert plan_search(100_000, EmbeddingIndexConfig(kind="exact")).kind == "exact"


def test_combine_chains_semantic_after_phash() -> None:
    rng = np.random.default_rng(9)
    x = _random(10, seed=10)
    z = _at_cos(x[0], 0.99, rng)
    uids = ["cc12m-x", "coyo700m-y", "laion2b-z"] + [f"sbu-{i}" for i in range(8)]
    phash = rng.integers(0, 2**63, 11, dtype=np.uint64)
    phash[0] = phash[1]  # x and y share a pHash: x drops towards coyo y
    table = pa.table(
        {"uid": uids, "source": [u.split("-")[0] for u in uids], "url": uids, "sha256": uids,
         "phash": pa.array(phash, pa.uint64())}
    )  # fmt: skip
    first = cluster_duplicates(table, _cfg())
    assert _by_uid(first)["cc12m-x"]["dup_reason"] == "near_duplicate"
    dropped = first.filter(pa.compute.invert(first.column("dup_keep"))).column("uid")
    vecs = np.concatenate([[x[0], x[0], z], x[2:]]).astype(np.float32)  # y's vector ~ z's
    semantic = find_semantic_duplicates([EmbeddingPart(uids, list(table["source"].to_pylist()), vecs)],
                                        _cfg(), exclude=dropped)  # fmt: skip
    assert "cc12m-x" not in _by_uid(semantic)
    rows = _by_uid(combine_decisions(first, semantic))
    assert rows["coyo700m-y"]["dup_reason"] == "semantic_duplicate"
    assert rows["cc12m-x"]["dup_reason"] == "near_duplicate"
    assert {rows[u]["dup_keeper_uid"] for u in uids[:3]} == {"laion2b-z"} and rows["laion2b-z"]["dup_keep"]
    assert {rows[u]["dup_cluster"] for u in uids[:3]} == {"cc12m-x"}
    assert rows["sbu-0"]["dup_cluster"] is None and rows["sbu-0"]["emb_nn_sim"] is not None
    assert rows["cc12m-x"]["emb_nn_sim"] is None
    with pytest.raises(ValueError, match="kept"):
        combine_decisions(first, find_semantic_duplicates([EmbeddingPart(uids, "sbu", vecs)], _cfg()))


def test_config_defaults() -> None:
    cfg = DedupConfig()
    assert cfg.method == "both" and cfg.embeddings == "scoring" and cfg.k == 5
    assert cfg.embedding_index.kind == "auto"
    spec = DedupConfig.model_validate({"embeddings": {"model_name": "rs5m-tiny"}}).embeddings
    assert spec.model_name == "rs5m-tiny"
    with pytest.raises(ValueError):
        DedupConfig(method="fastdup")
