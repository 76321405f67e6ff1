"""Semantic near-duplicates from image embeddings, as RS5M found them with fastdup: k nearest neighbours by
cosine, connected components of the pairs at or above a threshold, one keeper per component.

Contract of ``find_semantic_duplicates(parts, cfg, exclude=None)``:
- ``parts``: ``EmbeddingPart`` partitions (uids, source(s), unit-norm float16/float32 vectors of any model
  and dimension, as a ``.npy`` file or an array), e.g. ``scoring_parts`` over the scoring stage's
  ``outlier/embeddings`` folder. Rows whose uid is in ``exclude`` (say, dropped by URL/content/pHash
  dedup) take no part and get no row. Rows with a zero vector (images the scorer could not decode) get a
  row but are never linked. Uids must be unique over all parts.
- Pairs: every row's ``cfg.k`` most similar other rows found by ``ann.self_knn`` (exact up to
  ``embedding_index.exact_max_rows`` rows, IVF above) with cosine >= ``cfg.embedding_threshold``.
- Components of those pairs (A ~ B ~ C links A and C); each keeps its best member by the pHash stage's
  priority rule (``cluster.priority_rank``: laioncoco last, then ``preferred_sources`` in order, then a
  seeded hash of the uid); the others are dropped with reason ``semantic_duplicate``.
- Output: ``SEMANTIC_SCHEMA``, one row per taking-part row in load order: the ``DEDUP_SCHEMA`` columns
  (``dup_cluster`` = the component's smallest uid, ``dup_keeper_uid``; both null for singletons) plus the
  row's source and its nearest compared neighbour with their cosine (``emb_nn_uid``, ``emb_nn_sim``: a score
  whatever the threshold; null when nothing was compared).
Memory: the vectors once, as float16 (2 bytes x rows x dim), plus blocks of ``chunk_rows``; every part is
read one at a time. ``combine_decisions`` chains these decisions after the pHash stage's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from rs5m.config.stages import DedupConfig
from rs5m.core.schema import Reason
from rs5m.pipeline.dedup.ann import KnnResult, self_knn
from rs5m.pipeline.dedup.cluster import DEDUP_SCHEMA, priority_rank

DUP_SEMANTIC = Reason.SEMANTIC_DUPLICATE.value
MIN_NORM = 0.5  # a stored row under this norm is a placeholder (undecodable image), not an embedding
COMBINED_SCHEMA = pa.schema(
    [*DEDUP_SCHEMA, pa.field("emb_nn_uid", pa.string()), pa.field("emb_nn_sim", pa.float32())]
)
SEMANTIC_SCHEMA = pa.schema(
    [
        *DEDUP_SCHEMA,
        pa.field("source", pa.string()),
        pa.field("emb_nn_uid", pa.string()),
        pa.field("emb_nn_sim", pa.float32()),
    ]
)


@dataclass(frozen=True)
class EmbeddingPart:
    """One partition: ``uids`` (list, or a ``.npy`` of strings), ``source`` (one name for all rows, or one
    per row), ``vectors`` (``[rows, dim]`` array or ``.npy`` path; row i belongs to uid i)."""

    uids: Sequence[str] | Path
    source: str | Sequence[str]
    vectors: np.ndarray | Path


@dataclass
class EmbeddingSet:
    """All taking-part rows: uids and sources (load order) and unit-norm float16 vectors."""

    uids: pa.ChunkedArray
    sources: pa.ChunkedArray
    vectors: np.ndarray
    embedded: np.ndarray  # False for placeholder (zero) rows


def scoring_parts(embeddings_dir: Path, sources: Sequence[str] | None = None) -> list[EmbeddingPart]:
    """Parts of the scoring stage's ``<dir>/<source>/<part>.npy`` files with ``<part>.uids.npy`` beside."""
    out = []
    for source_dir in sorted(p for p in Path(embeddings_dir).glob("*") if p.is_dir()):
        if sources is not None and source_dir.name not in sources:
            continue
        for vec in sorted(source_dir.glob("*.npy")):
            if not vec.name.endswith(".uids.npy"):
                out.append(EmbeddingPart(vec.with_suffix(".uids.npy"), source_dir.name, vec))
    return out


def _vectors(part: EmbeddingPart) -> np.ndarray:
    if isinstance(part.vectors, np.ndarray):
        return part.vectors
    return np.load(part.vectors, mmap_mode="r", allow_pickle=False)


def _part_meta(part: EmbeddingPart) -> tuple[pa.Array, pa.Array]:
    if isinstance(part.uids, str | Path):
        uids = pa.array(np.load(part.uids, allow_pickle=False).tolist(), pa.string())
    else:
        uids = pa.array(list(part.uids), pa.string())
    if isinstance(part.source, str):
        sources = pa.array([part.source] * len(uids), pa.string())
    else:
        sources = pa.array(list(part.source), pa.string())
    if len(sources) != len(uids):
        raise ValueError(f"part {part.vectors}: {len(uids)} uids but {len(sources)} sources")
    return uids, sources


def load_embeddings(
    parts: Sequence[EmbeddingPart], exclude: pa.Array | None = None, chunk_rows: int = 65_536
) -> EmbeddingSet:
    """Read every part once into one float16 array, normalising in blocks of ``chunk_rows`` rows."""
    metas, keeps, dims = [], [], set()
    for part in parts:
        uids, sources = _part_meta(part)
        vec = _vectors(part)
        if vec.ndim != 2 or len(vec) != len(uids):
            raise ValueError(f"part {part.vectors}: vectors {vec.shape} do not match {len(uids)} uids")
        dims.add(vec.shape[1])
        keep = np.ones(len(uids), bool)
        if exclude is not None and len(exclude):
            keep = ~pc.is_in(uids, value_set=exclude).to_numpy(zero_copy_only=False)
        metas.append((uids.filter(pa.array(keep)), sources.filter(pa.array(keep))))
        keeps.append(keep)
        del vec
    if len(dims) > 1:
        raise ValueError(f"embeddings of different dimensions: {sorted(dims)}")
    dim = dims.pop() if dims else 0
    n = sum(int(k.sum()) for k in keeps)
    x = np.empty((n, dim), dtype=np.float16)
    embedded = np.zeros(n, dtype=bool)
    at = 0
    for part, keep in zip(parts, keeps, strict=True):
        vec, rows = _vectors(part), np.flatnonzero(keep)
        for s in range(0, len(rows), chunk_rows):
            block = np.asarray(vec[rows[s : s + chunk_rows]], dtype=np.float32)
            norm = np.linalg.norm(block, axis=1, keepdims=True)
            ok = norm[:, 0] >= MIN_NORM
            x[at : at + len(block)] = np.where(ok[:, None], block / np.maximum(norm, 1e-12), 0)
            embedded[at : at + len(block)] = ok
            at += len(block)
        del vec
    uids = pa.chunked_array([m[0] for m in metas], pa.string())
    if pc.count_distinct(uids).as_py() != len(uids):
        raise ValueError("find_semantic_duplicates: uids must be unique over all parts")
    return EmbeddingSet(uids, pa.chunked_array([m[1] for m in metas], pa.string()), x, embedded)


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def cluster_embeddings(data: EmbeddingSet, cfg: DedupConfig) -> tuple[pa.Table, KnnResult]:
    """Pairs, components and keepers for loaded embeddings (see the module contract)."""
    n = len(data.uids)
    active = None if data.embedded.all() else np.flatnonzero(data.embedded)
    knn = self_knn(data.vectors, cfg.k, cfg.embedding_threshold, cfg.embedding_index, cfg.seed, active)
    i, j, nn, nn_sim = knn.i, knn.j, knn.nn, knn.nn_sim
    keeper = np.arange(n)
    members = np.unique(np.concatenate([i, j]))
    if len(members):
        local = np.searchsorted(members, np.stack([i, j]))
        comp = _components(len(members), local[0], local[1])
        rank = priority_rank(data.uids.take(members), data.sources.take(members), cfg)
        best = np.full(comp.max() + 1, len(members), dtype=np.int64)
        np.minimum.at(best, comp, rank)
        by_rank = np.empty(len(members), dtype=np.int64)
        by_rank[rank] = np.arange(len(members))
        keeper[members] = members[by_rank[best[comp]]]
    return _table(data, keeper, nn, nn_sim), knn


def _cluster_columns(uids: pa.ChunkedArray, keeper: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """``dup_cluster`` (smallest uid of the keeper's group) and ``dup_keeper_uid``; null for singletons."""
    n = len(keeper)
    linked = np.bincount(keeper, minlength=n)[keeper] > 1
    idx = np.flatnonzero(linked)
    order = pc.sort_indices(uids.take(idx)).to_numpy()
    lexical = np.empty(len(idx), dtype=np.int64)
    lexical[order] = np.arange(len(idx))
    smallest = np.full(n, len(idx), dtype=np.int64)
    np.minimum.at(smallest, keeper[idx], lexical)
    first = np.zeros(n, dtype=np.int64)
    first[idx] = idx[order[smallest[keeper[idx]]]]
    unlinked, none = pa.array(~linked), pa.scalar(None, pa.string())
    return pc.if_else(unlinked, none, uids.take(first)), pc.if_else(unlinked, none, uids.take(keeper))


def _reason(dropped: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(dropped), DUP_SEMANTIC, pa.scalar(None, pa.string()))


def _table(data: EmbeddingSet, keeper: np.ndarray, nn: np.ndarray, nn_sim: np.ndarray) -> pa.Table:
    cluster, keeper_uid = _cluster_columns(data.uids, keeper)
    dropped = keeper != np.arange(len(keeper))
    nn_uid = pc.if_else(pa.array(nn < 0), pa.scalar(None, pa.string()), data.uids.take(np.maximum(nn, 0)))
    sim = pa.array(nn_sim, pa.float32(), mask=np.isnan(nn_sim))
    cols = [data.uids, cluster, pa.array(~dropped), _reason(dropped), keeper_uid, data.sources, nn_uid, sim]
    return pa.table(cols, schema=SEMANTIC_SCHEMA)


def find_semantic_duplicates(
    parts: Sequence[EmbeddingPart], cfg: DedupConfig, exclude: pa.Array | None = None
) -> pa.Table:
    """Load ``parts`` and cluster them (see the module contract); returns ``SEMANTIC_SCHEMA`` rows."""
    data = load_embeddings(parts, exclude, cfg.embedding_index.chunk_rows)
    return cluster_embeddings(data, cfg)[0]


def combine_decisions(first: pa.Table, semantic: pa.Table) -> pa.Table:
    """Chain embedding decisions after the URL/content/pHash ones: ``COMBINED_SCHEMA``, ``first``'s rows.

    ``first`` is a ``cluster_duplicates`` result; ``semantic`` a ``find_semantic_duplicates`` result over
    rows ``first`` kept (the rows it dropped passed as ``exclude``). A row dropped by an earlier stage
    keeps its reason and follows its keeper to that keeper's semantic keeper; a cluster is a final keeper
    and every row dropped towards it, named by its smallest uid, as in ``cluster_duplicates``.
    """
    uids = first.column("uid")
    n = len(uids)
    pos = pc.index_in(semantic.column("uid"), uids).to_numpy(zero_copy_only=False)
    if len(pos) and np.isnan(pos.astype(float)).any():
        raise ValueError("combine_decisions: semantic rows must be rows of the first decisions")
    pos = pos.astype(np.int64)
    if len(pos) and not np.asarray(first.column("dup_keep").take(pos)).all():
        raise ValueError("combine_decisions: semantic rows must be rows the first decisions kept")
    own = np.arange(n)

    def _at(keepers: pa.ChunkedArray, default: np.ndarray) -> np.ndarray:
        found = pc.index_in(keepers, uids)
        return np.where(pc.is_null(found).to_numpy(zero_copy_only=False), default, found.fill_null(0))

    step = own.copy()
    step[pos] = _at(semantic.column("dup_keeper_uid"), pos)
    keeper = step[_at(first.column("dup_keeper_uid"), own)]
    cluster, keeper_uid = _cluster_columns(uids, keeper)
    late = (keeper != own) & pc.is_null(first.column("dup_reason")).to_numpy(zero_copy_only=False)
    reason = pc.coalesce(first.column("dup_reason"), _reason(late))
    nn_uid = pa.nulls(n, pa.string()).to_numpy(zero_copy_only=False).astype(object)
    nn_uid[pos] = semantic.column("emb_nn_uid").to_numpy(zero_copy_only=False)
    nn_sim = np.full(n, np.nan, dtype=np.float32)
    nn_sim[pos] = semantic.column("emb_nn_sim").to_numpy(zero_copy_only=False)
    cols = [uids, cluster, pa.array(keeper == own), reason, keeper_uid]
    cols += [pa.array(nn_uid, pa.string()), pa.array(nn_sim, pa.float32(), mask=np.isnan(nn_sim))]
    return pa.table(cols, schema=COMBINED_SCHEMA)
