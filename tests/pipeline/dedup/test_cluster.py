"""Dedup: pHash equal to imagededup's, exact multi-index search, stage order and the RS5M priority rule."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from rs5m.config import DedupConfig
from rs5m.pipeline.dedup import cluster as dedup
from rs5m.pipeline.dedup.cluster import cluster_duplicates, explain_uid, hash_partition, phash_bytes
from rs5m.pipeline.dedup.index import brute_force_pairs, near_components, near_pairs, plan_search

CFG = DedupConfig()


def encode(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A procedural 'aerial' image: smooth random field plus a few rectangles (fields, roofs)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).resize(
        size, Image.Resampling.BICUBIC
    )
    for _ in range(6):
        x, y = rng.integers(0, size[0] - 40), rng.integers(0, size[1] - 40)
        img.paste(tuple(int(v) for v in rng.integers(0, 256, 3)), (x, y, x + 40, y + 30))
    return img


def variants(img: Image.Image) -> dict[str, bytes]:
    w, h = img.size
    return {
        "jpeg_q40": encode(img, quality=40),
        "png": encode(img, "PNG"),
        "half": encode(img.resize((w // 2, h // 2), Image.Resampling.BILINEAR), quality=85),
        "crop1pct": encode(img.crop((w // 100, h // 100, w - w // 100, h - h // 100)), quality=90),
    }


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def table_of(rows: list[tuple[str, str, str, str | None, int | None]]) -> pa.Table:
    uid, source, url, sha, ph = zip(*rows, strict=True)
    return pa.table(
        {
            "uid": uid,
            "source": source,
            "url": url,
            "sha256": pa.array(sha, pa.string()),
            "phash": pa.array(ph, pa.uint64()),
        }
    )


def decisions(result: pa.Table) -> dict[str, tuple[bool, str | None, str | None]]:
    return {r["uid"]: (r["dup_keep"], r["dup_reason"], r["dup_keeper_uid"]) for r in result.to_pylist()}


# --- pHash -----------------------------------------------------------------------------------------


def imagededup_phash(data: bytes) -> int:
    from imagededup.methods import PHash

    logging.getLogger("imagededup").setLevel(logging.ERROR)
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return int(PHash(verbose=False).encode_image(image_array=img), 16)


def test_phash_equals_imagededup_on_procedural_images() -> None:
    for seed in range(12):
        data = encode(scene(seed), quality=92)
        assert phash_bytes(data) == imagededup_phash(data)


def test_phash_equals_imagededup_on_real_images(shared_data: Path) -> None:
    files = sorted((shared_data / "whu-rs19").rglob("*.jpg"))[::20]
    assert len(files) >= 40
    for f in files:
        data = f.read_bytes()
        assert phash_bytes(data) == imagededup_phash(data), f.name


def test_draft_decoding_stays_within_a_few_bits(shared_data: Path) -> None:
    files = sorted((shared_data / "whu-rs19").rglob("*.jpg"))[::10]
    dists = [hamming(phash_bytes(f.read_bytes()), phash_bytes(f.read_bytes(), 64)) for f in files]
    assert max(dists) <= 4 and np.mean(dists) < 1.0


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA"])
def test_phash_of_non_rgb_images_is_close_to_its_rgb_copy(mode: str) -> None:
    img = scene(9)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    data = encode(img.convert(mode), fmt)
    rgb = encode(img.convert(mode).convert("RGB"), "PNG")
    assert hamming(phash_bytes(data, 64), phash_bytes(rgb)) <= 4


def test_hash_partition_rows() -> None:
    data = encode(scene(1))
    out = hash_partition(pa.table({"uid": ["a", "b", "c"], "image": [data, b"not an image", None]}), CFG)
    assert out.schema == dedup.HASH_SCHEMA
    rows = out.to_pylist()
    assert rows[0]["sha256"] == dedup.sha256_hex(data) and rows[0]["phash"] == phash_bytes(data, 64)
    assert rows[1]["phash"] is None and rows[1]["sha256"] is not None
    assert rows[2] == {"uid": "c", "sha256": None, "phash": None}


def test_transformed_copies_cluster_with_original_and_distinct_images_do_not() -> None:
    rows, expected = [], {}
    for seed in range(8):
        img = scene(100 + seed)
        original = encode(img, quality=95)
        rows.append((f"s{seed}-orig", "laion2b", f"http://x/{seed}", original))
        expected[f"s{seed}-orig"] = f"s{seed}-orig"
        for name, data in variants(img).items():
            rows.append((f"s{seed}-{name}", "cc12m", f"http://y/{seed}/{name}", data))
            expected[f"s{seed}-{name}"] = f"s{seed}-orig"
    table = table_of(
        [(u, s, url, dedup.sha256_hex(d), phash_bytes(d, CFG.phash_draft_size)) for u, s, url, d in rows]
    )
    out = decisions(cluster_duplicates(table, CFG))
    assert {u: k for u, (_, _, k) in out.items()} == expected
    assert sum(keep for keep, _, _ in out.values()) == 8


def test_real_image_variants_cluster(shared_data: Path) -> None:
    files = sorted((shared_data / "whu-rs19").rglob("*.jpg"))[::50]
    rows = []
    for i, f in enumerate(files):
        img = Image.open(f).convert("RGB")
        rows.append((f"r{i}", "laion2b", f"u{i}", f.read_bytes()))
        rows += [(f"r{i}-{k}", "wit", f"u{i}-{k}", d) for k, d in variants(img).items() if k != "crop1pct"]
    table = table_of([(u, s, url, dedup.sha256_hex(d), phash_bytes(d, 64)) for u, s, url, d in rows])
    out = decisions(cluster_duplicates(table, CFG))
    assert [u for u, (keep, _, _) in out.items() if keep] == [f"r{i}" for i in range(len(files))]


# --- multi-index search -----------------------------------------------------------------------------


def planted_hashes(n: int, n_pairs: int, max_dist: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64)
    src = rng.integers(0, n, n_pairs)
    dst = rng.choice(n, n_pairs, replace=False)
    for s, d, k in zip(src, dst, rng.integers(0, max_dist + 1, n_pairs), strict=True):
        bits = rng.choice(64, k, replace=False)
        h[d] = h[s] ^ np.uint64(sum(1 << int(b) for b in bits))
    return h


@pytest.mark.parametrize("threshold", [0, 1, 3, 6, 8, 10, 13])
def test_near_pairs_have_exact_recall(threshold: int) -> None:
    h = planted_hashes(4000, 600, threshold + 2, seed=threshold)
    bi, bj = brute_force_pairs(h, threshold)
    truth = {(min(a, b), max(a, b)) for a, b in zip(bi, bj, strict=True) if h[a] != h[b]}
    found = set()
    for a, b in near_pairs(h, threshold):
        assert np.all(np.bitwise_count(h[a] ^ h[b]) <= threshold)
        found |= {(min(x, y), max(x, y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)}
    assert found == truth and (len(truth) > 50 or threshold == 0)


def test_near_components_match_brute_force_components() -> None:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    h = planted_hashes(3000, 900, 12, seed=7)
    h[:50] = h[50]  # a block of identical hashes
    labels = near_components(h, 8)
    bi, bj = brute_force_pairs(h, 8)
    _, ref = connected_components(
        coo_matrix((np.ones(len(bi)), (bi, bj)), shape=(len(h), len(h))), directed=False
    )
    smallest = {}
    for row, comp in enumerate(ref):
        smallest.setdefault(comp, row)
    assert labels.tolist() == [smallest[c] for c in ref]
    assert len(np.unique(labels)) < len(h) - 100


def test_plan_is_exact_by_pigeonhole() -> None:
    for n in (10, 20_000, 5_000_000):
        for t in range(0, 16):
            plan = plan_search(n, t)
            assert sum(plan.widths) == 64
            assert len(plan.widths) * (plan.radius + 1) >= t + 1


# --- stages and the priority rule ---------------------------------------------------------------------

A, B = 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210  # 64 bits apart


def test_stage_order_and_reasons() -> None:
    rows = [
        ("u1", "laioncoco", "http://a", "s1", A),
        ("u2", "cc12m", "http://a", "s2", A ^ 1),  # same URL as u1
        ("u3", "wit", "http://b", "s2", A ^ 1),  # same bytes as u2
        ("u4", "cc3m", "http://c", "s4", A ^ 0b111),  # 2 bits from u2/u3
        ("u5", "sbu", "http://d", "s5", A ^ 1 ^ (0xFF << 8)),  # 8 bits from u2/u3, 10 from u4
        ("u6", "vg", "http://e", "s6", A ^ (0xFFFF << 32)),  # 15+ bits from all: not a duplicate
    ]
    result = cluster_duplicates(table_of(rows), CFG)
    assert result.schema == dedup.DEDUP_SCHEMA
    out = decisions(result)
    assert out["u1"][1] == dedup.DUP_URL  # laioncoco loses the URL group
    assert out["u6"] == (True, None, None)
    keeper = out["u2"][2]
    assert {out[u][2] for u in ("u1", "u2", "u3", "u4", "u5")} == {keeper}
    assert keeper in ("u2", "u3")
    assert out[({"u2", "u3"} - {keeper}).pop()][1] == dedup.DUP_CONTENT
    assert out["u4"][1] == out["u5"][1] == dedup.DUP_NEAR
    cluster = result.column("dup_cluster").to_pylist()
    assert cluster[:5] == ["u1"] * 5 and cluster[5] is None


def test_laioncoco_is_dropped_first() -> None:
    rows = [(f"c{i}", "laioncoco", f"u{i}", f"s{i}", A) for i in range(5)] + [("w", "wit", "uw", "sw", A ^ 2)]
    out = decisions(cluster_duplicates(table_of(rows), CFG))
    assert out["w"] == (True, None, "w")
    assert all(out[f"c{i}"] == (False, dedup.DUP_NEAR, "w") for i in range(5))


def test_all_laioncoco_cluster_still_keeps_one() -> None:
    rows = [(f"c{i}", "laioncoco", "same-url", f"s{i}", A) for i in range(4)]
    out = decisions(cluster_duplicates(table_of(rows), CFG))
    assert sum(k for k, _, _ in out.values()) == 1


@pytest.mark.parametrize(
    ("sources", "winner"),
    [
        (["coyo700m", "laion400m", "laion2b", "wit"], "laion2b"),
        (["coyo700m", "laion400m", "wit"], "laion400m"),
        (["cc12m", "coyo700m", "laioncoco"], "coyo700m"),
    ],
)
def test_preferred_sources_win_in_order(sources: list[str], winner: str) -> None:
    rows = [(f"id-{s}", s, "http://same", f"sha-{s}", A) for s in sources]
    out = decisions(cluster_duplicates(table_of(rows), CFG))
    assert [u for u, (keep, _, _) in out.items() if keep] == [f"id-{winner}"]


def test_tie_break_is_deterministic_seeded_and_order_free() -> None:
    rows = [(f"id{i}", "wit", "http://same", f"s{i}", None) for i in range(40)]
    table = table_of(rows)
    first = decisions(cluster_duplicates(table, CFG))
    shuffled = table.take(np.random.default_rng(1).permutation(40))
    assert decisions(cluster_duplicates(shuffled, CFG)) == first
    keepers = {
        next(u for u, (k, _, _) in decisions(cluster_duplicates(table, DedupConfig(seed=s))).items() if k)
        for s in range(8)
    }
    assert len(keepers) > 1  # the seed matters: a pseudo-random pick, not "smallest uid"


def test_every_uid_once_in_input_order_and_nulls_skip_stages() -> None:
    rng = np.random.default_rng(3)
    n = 500
    rows = [
        (
            f"uid{i:04d}",
            ["laion2b", "laioncoco", "wit", "cc3m"][i % 4],
            f"http://h/{rng.integers(0, 400)}" if i % 7 else None,
            f"sha{rng.integers(0, 420)}" if i % 5 else None,
            int(rng.integers(0, 2**63)) if i % 3 else None,
        )
        for i in rng.permutation(n)
    ]
    table = table_of(rows)
    result = cluster_duplicates(table, CFG)
    assert result.column("uid").to_pylist() == table.column("uid").to_pylist()
    keepers = set(result.column("dup_keeper_uid").drop_null().to_pylist())
    kept = {r["uid"] for r in result.to_pylist() if r["dup_keep"]}
    assert keepers <= kept
    for r in result.to_pylist():
        assert (r["dup_reason"] is None) == r["dup_keep"]
        assert (r["dup_cluster"] is None) == (r["dup_keeper_uid"] is None)


def test_empty_input_gives_empty_output() -> None:
    empty = pa.table(
        {
            "uid": pa.array([], pa.string()),
            "source": pa.array([], pa.string()),
            "url": pa.array([], pa.string()),
            "sha256": pa.array([], pa.string()),
            "phash": pa.array([], pa.uint64()),
        }
    )
    out = cluster_duplicates(empty, CFG)
    assert out.num_rows == 0 and out.schema == dedup.DEDUP_SCHEMA
    untyped = pa.table({"uid": [], "source": [], "url": [], "sha256": [], "phash": pa.array([], pa.uint64())})
    assert cluster_duplicates(untyped, CFG).schema == dedup.DEDUP_SCHEMA


def test_duplicate_uids_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        cluster_duplicates(table_of([("x", "wit", "a", "s", 1), ("x", "wit", "b", "t", 2)]), CFG)


def test_explain_uid_lists_cluster_and_keeper() -> None:
    rows = [
        ("k", "laion2b", "u", "s1", A),
        ("d", "laioncoco", "u", "s2", B),
        ("lone", "wit", "v", "s3", B ^ 0xFF),
    ]
    table = table_of(rows)
    result = cluster_duplicates(table, CFG)
    info = explain_uid(result, "d", table)
    assert info["keeper_uid"] == "k" and info["reason"] == dedup.DUP_URL and info["cluster"] == "d"
    assert [(m["uid"], m["source"]) for m in info["members"]] == [("k", "laion2b"), ("d", "laioncoco")]
    assert explain_uid(result, "lone")["members"] == []
    with pytest.raises(KeyError):
        explain_uid(result, "missing")
    assert dedup.removed_by_source(result, table) == {"laioncoco": {dedup.DUP_URL: 1}}
