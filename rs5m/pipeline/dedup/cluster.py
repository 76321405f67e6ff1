"""Duplicate clustering across all PUB11 sources: exact URL, exact content, then perceptual near-duplicates.

Contract of ``cluster_duplicates``:
- Input: one row per downloaded, valid image with ``uid`` (unique), ``source``, ``url``, ``sha256`` and
  ``phash`` (uint64, imagededup's PHash bit order). Null ``url``/``sha256``/``phash`` skip that stage.
- Stages run in RS5M's order, each over the survivors of the previous one: rows sharing a URL, then
  rows sharing a content hash, then rows whose pHashes are within ``near_threshold`` bits (connected
  components, exact search by multi-index hashing). Each group keeps its best row by the priority rule
  and drops the rest with that stage's reason.
- Priority rule (one total order, so the keeper of a whole cluster is its best member): a source in
  ``discard_first_sources`` (laioncoco) loses to any other; then ``preferred_sources`` in list order
  (laion2b, laion400m, coyo700m); then every other source alike; ties go to the smallest keyed
  BLAKE2b hash of the uid (seed ``seed``), i.e. a deterministic pseudo-random pick.
- Output: one row per input row, same order, ``DEDUP_SCHEMA``. A cluster is a keeper with everything
  dropped towards it; ``dup_cluster`` is the cluster's smallest uid (stable when the priority rule
  changes), null for singletons; ``dup_keeper_uid`` is null for singletons.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from rs5m.config import DedupConfig
from rs5m.core.schema import Reason
from rs5m.pipeline.dedup.index import near_components
from rs5m.pipeline.validity.check import to_rgb

# Reason codes of the dedup stage.
DUP_URL = Reason.URL_DUPLICATE.value
DUP_CONTENT = Reason.CONTENT_DUPLICATE.value
DUP_NEAR = Reason.NEAR_DUPLICATE.value
DUP_REASONS = (DUP_URL, DUP_CONTENT, DUP_NEAR)

DEDUP_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("dup_cluster", pa.string()),
        pa.field("dup_keep", pa.bool_(), nullable=False),
        pa.field("dup_reason", pa.string()),
        pa.field("dup_keeper_uid", pa.string()),
    ]
)
HASH_SCHEMA = pa.schema(
    [
        pa.field("uid", pa.string(), nullable=False),
        pa.field("sha256", pa.string()),
        pa.field("phash", pa.uint64()),
    ]
)


# imagededup's PHash: 32x32 grey, 2-D DCT-II (scipy.fftpack, unnormalised), top-left 8x8, bit = coef >= median
# of the 63 AC terms, row-major, first bit most significant. Only the 8 used DCT rows are computed.
_DCT8 = 2.0 * np.cos(np.pi * np.outer(np.arange(8), 2 * np.arange(32) + 1) / 64.0)


def phash_image(img: Image.Image) -> int:
    """Return the 64-bit pHash of ``img`` (equal to imagededup's ``PHash().encode_image`` for RGB images)."""
    small = to_rgb(img).resize((32, 32), Image.Resampling.LANCZOS).convert("L")
    coef = (_DCT8 @ np.asarray(small, dtype=np.float64) @ _DCT8.T).ravel()
    bits = coef >= np.median(coef[1:])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash_bytes(data: bytes, draft_size: int | None = None) -> int:
    """pHash of encoded image bytes. ``draft_size`` lets JPEG decode at 1/2..1/8 scale (not bit-exact)."""
    img = Image.open(io.BytesIO(data))
    if draft_size is not None and img.format == "JPEG":
        img.draft("RGB", (draft_size, draft_size))
    return phash_image(img)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of the bytes (the exact-content key)."""
    return hashlib.sha256(data).hexdigest()


def hash_partition(
    table: pa.Table, cfg: DedupConfig, *, uid_col: str = "uid", image_col: str = "image"
) -> pa.Table:
    """``HASH_SCHEMA`` rows for a partition of valid images; undecodable bytes get a null ``phash``."""
    uids, shas, phashes = [], [], []
    for uid, data in zip(table.column(uid_col).to_pylist(), table.column(image_col).to_pylist(), strict=True):
        uids.append(uid)
        shas.append(sha256_hex(data) if data is not None else None)
        try:
            phashes.append(phash_bytes(data, cfg.phash_draft_size) if data else None)
        except Exception:  # undecodable bytes: no pHash, the row still takes part in URL/content dedup
            phashes.append(None)
    return pa.table([uids, shas, phashes], schema=HASH_SCHEMA)


def _uid_hash(uids: list[str], seed: int) -> np.ndarray:
    key = seed.to_bytes(8, "little")
    raw = b"".join(hashlib.blake2b(u.encode(), digest_size=8, key=key).digest() for u in uids)
    return np.frombuffer(raw, dtype="<u8")


def _source_rank(sources: pa.ChunkedArray, cfg: DedupConfig) -> np.ndarray:
    enc = pc.dictionary_encode(sources).combine_chunks()
    ranks = []
    for name in enc.dictionary.to_pylist():
        if name in cfg.discard_first_sources:
            ranks.append(len(cfg.preferred_sources) + 1)
        elif name in cfg.preferred_sources:
            ranks.append(cfg.preferred_sources.index(name))
        else:
            ranks.append(len(cfg.preferred_sources))
    return np.asarray(ranks, dtype=np.int64)[enc.indices.to_numpy(zero_copy_only=False)]


def priority_rank(
    uids: pa.ChunkedArray, sources: pa.ChunkedArray, cfg: DedupConfig, lexical: np.ndarray | None = None
) -> np.ndarray:
    """Rank of every row under the priority rule: 0 is the best; a permutation of ``0..n-1``.

    ``lexical`` (the uids' sort rank, from ``_lexical_rank``) breaks the one-in-2**64 hash tie.
    """
    lexical = _lexical_rank(uids) if lexical is None else lexical
    order = np.lexsort((lexical, _uid_hash(uids.to_pylist(), cfg.seed), _source_rank(sources, cfg)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _lexical_rank(uids: pa.ChunkedArray) -> np.ndarray:
    order = pc.sort_indices(uids).to_numpy()
    ordered = uids.take(order)
    if len(ordered) > 1 and pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py():
        raise ValueError("cluster_duplicates: uids must be unique")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """Integer group code per row (equal values share it); -1 for null."""
    enc = pc.dictionary_encode(column).combine_chunks()
    return enc.indices.fill_null(-1).to_numpy().astype(np.int64)


def _group_best(codes: np.ndarray, alive: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each live row with a code, the best-ranked live row of its group; other rows map to themselves."""
    best = np.arange(len(codes))
    idx = np.flatnonzero(alive & (codes >= 0))
    order = idx[np.lexsort((rank[idx], codes[idx]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = codes[order][1:] != codes[order][:-1]
    best[order] = order[first][np.cumsum(first) - 1]
    return best


def _near_codes(phash: pa.ChunkedArray, alive: np.ndarray, threshold: int) -> np.ndarray:
    codes = np.full(len(alive), -1, dtype=np.int64)
    valid = pc.is_valid(phash).to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(alive & valid)
    values = phash.fill_null(0).combine_chunks().to_numpy().astype(np.uint64)[idx]
    codes[idx] = near_components(values, threshold)
    return codes


def _normalised(table: pa.Table) -> pa.Table:
    """The five input columns with their expected types (an empty input may come typed ``null``)."""
    types = {"uid": pa.string(), "source": pa.string(), "url": pa.string(), "phash": pa.uint64()}
    sha = table.column("sha256")
    cols = {name: table.column(name).cast(t) for name, t in types.items()}
    cols["sha256"] = sha.cast(pa.string()) if pa.types.is_null(sha.type) else sha
    return pa.table(cols)


def cluster_duplicates(table: pa.Table, cfg: DedupConfig) -> pa.Table:
    """Cluster duplicates and pick keepers (see the module contract); returns ``DEDUP_SCHEMA`` rows."""
    table = _normalised(table)
    n = table.num_rows
    uids = table.column("uid")
    lexical = _lexical_rank(uids)
    rank = priority_rank(uids, table.column("source"), cfg, lexical)
    alive = np.ones(n, dtype=bool)
    parent = np.arange(n)
    reason = np.zeros(n, dtype=np.int8)  # 0 kept, else 1 + index into DUP_REASONS
    stages = (
        lambda: _codes(table.column("url")),
        lambda: _codes(table.column("sha256")),
        lambda: _near_codes(table.column("phash"), alive, cfg.near_threshold),
    )
    for k, codes in enumerate(stages):
        best = _group_best(codes(), alive, rank)
        dropped = alive & (best != np.arange(n))
        parent[dropped], reason[dropped] = best[dropped], k + 1
        alive &= ~dropped
    for _ in DUP_REASONS:  # a drop points at a row alive after its stage: three hops reach the keeper
        parent = parent[parent]
    return _result_table(uids, parent, reason, lexical)


def _result_table(
    uids: pa.ChunkedArray, keeper: np.ndarray, reason: np.ndarray, lexical: np.ndarray
) -> pa.Table:
    n = len(keeper)
    size = np.bincount(keeper, minlength=n)
    in_cluster = size[keeper] > 1
    smallest = np.full(n, n, dtype=np.int64)
    np.minimum.at(smallest, keeper, lexical)
    by_lexical = np.empty(n, dtype=np.int64)
    by_lexical[lexical] = np.arange(n)
    mask = pa.array(~in_cluster)
    cluster = uids.take(np.where(in_cluster, by_lexical[np.minimum(smallest[keeper], n - 1)], 0))
    labels = pa.array(np.array((None, *DUP_REASONS), dtype=object)[reason], type=pa.string())
    return pa.table(
        [
            uids,
            pc.if_else(mask, pa.scalar(None, pa.string()), cluster),
            pa.array(keeper == np.arange(n)),
            labels,
            pc.if_else(mask, pa.scalar(None, pa.string()), uids.take(keeper)),
        ],
        schema=DEDUP_SCHEMA,
    )


def explain_uid(result: pa.Table, uid: str, sources: pa.Table | None = None) -> dict:
    """The dedup decision for one uid: its cluster, keeper and members (for ``rs5m why``).

    ``result`` is a ``cluster_duplicates`` output; ``sources`` (uid, source) adds each member's source.
    Raises ``KeyError`` when the uid is not in ``result``.
    """
    row = result.filter(pc.equal(result.column("uid"), uid))
    if row.num_rows == 0:
        raise KeyError(uid)
    me = row.to_pylist()[0]
    out = {"uid": uid, "cluster": me["dup_cluster"], "keep": me["dup_keep"], "reason": me["dup_reason"]}
    out["keeper_uid"], out["members"] = me["dup_keeper_uid"], []
    if me["dup_cluster"] is not None:
        members = result.filter(pc.equal(result.column("dup_cluster"), me["dup_cluster"]))
        if sources is not None:
            members = members.join(sources.select(["uid", "source"]), "uid", join_type="left outer")
        out["members"] = sorted(members.to_pylist(), key=lambda m: (not m["dup_keep"], m["uid"]))
    return out


def removed_by_source(result: pa.Table, sources: pa.Table) -> dict[str, dict[str, int]]:
    """Rows dropped per source and reason, joining ``result`` with (uid, source) rows."""
    joined = result.select(["uid", "dup_reason"]).join(sources.select(["uid", "source"]), "uid")
    dropped = joined.filter(pc.is_valid(joined.column("dup_reason")))
    counts = dropped.group_by(["source", "dup_reason"]).aggregate([("uid", "count")]).to_pylist()
    out: dict[str, dict[str, int]] = {}
    for c in counts:
        out.setdefault(c["source"], {})[c["dup_reason"]] = c["uid_count"]
    return out
