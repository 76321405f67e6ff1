"""Train/val split: deterministic by key, ~5 % per subset, duplicate clusters never straddle."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from rs5m.shards import assign_split, split_keys, split_keys_of, split_names
from rs5m.shards.split import hash_unit


def test_hash_values_are_pinned() -> None:
    # a change here re-splits every released version: only change it on purpose
    keys = ["laion2b-0000000000000000", "coyo700m-abcdef0123456789", "rs3-fmow-1", "cluster-42"]
    np.testing.assert_allclose(
        hash_unit(keys, 2023),
        [0.1448899959388116, 0.6840771601015276, 0.8941742169418139, 0.38347371357023724],
    )
    assert assign_split([f"u{i}" for i in range(40)], 0.05, 2023).nonzero()[0].tolist() == [23]


def test_assignment_ignores_row_order_and_input_type() -> None:
    keys = [f"laion2b-{i:016x}" for i in range(2000)]
    base = dict(zip(keys, assign_split(pa.array(keys), 0.05, 7), strict=True))
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    again = assign_split(pa.chunked_array([shuffled[:500], shuffled[500:]]), 0.05, 7)
    assert all(base[k] == v for k, v in zip(shuffled, again, strict=True))
    assert (assign_split(keys, 0.05, 7) == np.array([base[k] for k in keys])).all()


@pytest.mark.parametrize("subset", ["pub11", "rs3"])
def test_val_fraction_is_about_five_percent_per_subset(subset: str) -> None:
    keys = [f"{subset}-{i}" for i in range(40_000)]
    frac = assign_split(keys, 0.05, 2023).mean()
    assert 0.045 < frac < 0.055


def test_seed_and_fraction_edges() -> None:
    keys = [f"k{i}" for i in range(1000)]
    assert (assign_split(keys, 0.05, 1) != assign_split(keys, 0.05, 2)).any()
    assert not assign_split(keys, 0.0, 1).any()
    assert assign_split(keys, 1.0, 1).all()
    with pytest.raises(ValueError):
        assign_split(keys, 1.5, 1)


def test_duplicate_cluster_never_straddles() -> None:
    # 300 clusters of 4 near-duplicates, the kept member carrying no cluster id of its own
    uids, clusters = [], []
    for c in range(300):
        rep = f"laion2b-rep{c}"
        uids.append(rep)
        clusters.append(None)
        for j in range(3):
            uids.append(f"coyo700m-dup{c}-{j}")
            clusters.append(rep)
    table = pa.table({"uid": uids, "dup_cluster": pa.array(clusters, pa.string())})
    is_val = assign_split(split_keys_of(table), 0.2, 2023)
    by_cluster: dict[str, set[bool]] = {}
    for uid, cl, v in zip(uids, clusters, is_val, strict=True):
        by_cluster.setdefault(cl or uid, set()).add(bool(v))
    assert all(len(v) == 1 for v in by_cluster.values())
    assert 0 < is_val.sum() < len(uids)
    assert set(split_names(is_val).to_pylist()) == {"train", "val"}


def test_split_keys_fallbacks_and_errors() -> None:
    uid = pa.array(["a", "b", "c"])
    assert split_keys(uid).to_pylist() == ["a", "b", "c"]
    assert split_keys(uid, pa.array([7, None, 7])).to_pylist() == ["7", "b", "7"]
    assert split_keys_of(pa.table({"uid": uid})).to_pylist() == ["a", "b", "c"]
    with pytest.raises(ValueError):
        split_keys(pa.array(["a", None]))
    with pytest.raises(ValueError):
        split_keys(uid, pa.array([1, 2]))
