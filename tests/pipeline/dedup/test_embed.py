"""Dedup image embeddings with a model spec (a tiny random open_clip model): unit rows, zero rows for
undecodable bytes, and partitions stored in the scoring stage's layout."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from rs5m.config.stages import DedupConfig, DedupEmbeddingModel
from rs5m.pipeline.dedup.embed import ImageEmbedder, write_part
from rs5m.pipeline.dedup.embedding import find_semantic_duplicates, scoring_parts


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_embed_and_store_a_partition(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((96, 96))
    other = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((96, 96))
    embedder = ImageEmbedder(DedupEmbeddingModel(model_name="rs5m-tiny", batch_size=2, device="cpu"))
    vecs = embedder.embed([img, _jpeg(img), b"not an image", other])
    assert vecs.shape == (4, 64) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs[[0, 1, 3]], axis=1), 1, atol=1e-5) and not vecs[2].any()
    assert vecs[0] @ vecs[1] > 0.99  # the same picture after JPEG
    write_part(tmp_path / "cc12m", "00000", ["cc12m-a", "cc12m-b", "cc12m-c", "cc12m-d"], vecs)
    parts = scoring_parts(tmp_path)
    assert len(parts) == 1 and np.load(parts[0].vectors).dtype == np.float16
    rows = {
        r["uid"]: r
        for r in find_semantic_duplicates(parts, DedupConfig(embedding_threshold=0.99)).to_pylist()
    }
    assert rows["cc12m-a"]["dup_cluster"] == rows["cc12m-b"]["dup_cluster"] == "cc12m-a"
    assert rows["cc12m-c"]["dup_keep"] and rows["cc12m-c"]["emb_nn_sim"] is None
