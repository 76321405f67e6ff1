"""Retrieval recall on hand-made score matrices (reference §11.2) and the split readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rs5m.ml.evaluation.retrieval import hits_at_k, read_csv_split, read_txt_split, retrieval_metrics

# captions a1, a2 -> image A; b1 -> B; c1, c2, c3 -> C. Rows: captions, columns: images A, B, C.
SCORES = np.array(
    [
        [0.9, 0.1, 0.0],  # a1: A first
        [0.2, 0.8, 0.1],  # a2: A second
        [0.5, 0.5, 0.1],  # b1: tie A/B -> A (lower index) first, B second
        [0.1, 0.2, 0.7],  # c1: C first
        [0.3, 0.2, 0.1],  # c2: C third
        [0.6, 0.1, 0.3],  # c3: C second
    ],
    dtype=np.float32,
)
CAPTION_IMAGE = np.array([0, 0, 1, 2, 2, 2])


def test_hits_at_k_ties_rank_lower_index_first() -> None:
    pos_second = np.array([[False, True]])
    pos_first = np.array([[True, False]])
    tie = np.array([[0.5, 0.5]])
    assert not hits_at_k(tie, pos_second, 1)[0]
    assert hits_at_k(tie, pos_first, 1)[0]
    assert hits_at_k(tie, pos_second, 2)[0]


def test_hits_at_k_caps_k_at_the_candidate_count() -> None:
    assert hits_at_k(np.array([[0.1, 0.9, 0.5]]), np.array([[True, False, False]]), 10)[0]


def test_i2t_counts_any_ground_truth_caption() -> None:
    # image row over 4 captions; only its third caption is in the top 2
    scores = np.array([[0.1, 0.9, 0.8, 0.2]])
    positives = np.array([[True, False, True, True]])
    assert hits_at_k(scores, positives, 2)[0]
    assert not hits_at_k(scores, positives, 1)[0]


def test_retrieval_metrics_hand_computed() -> None:
    # with unit image vectors the score matrix is the text matrix itself
    metrics = retrieval_metrics(SCORES, np.eye(3, dtype=np.float32), CAPTION_IMAGE)
    # T2I: hits at 1 = a1, c1 -> 2/6; every caption's image is within 3 = all candidates
    # I2T: A -> a1 first (hit); B -> a2 first (miss at 1), b1 second; C -> c1 first (hit)
    assert metrics == {
        "i2t_R@1": 66.67,
        "i2t_R@5": 100.0,
        "i2t_R@10": 100.0,
        "t2i_R@1": 33.33,
        "t2i_R@5": 100.0,
        "t2i_R@10": 100.0,
        "mean_recall": 83.33,
    }


def test_mean_recall_uses_unrounded_values() -> None:
    # one caption per image; each side hits 1/3 at k=1 and k=2, all at k=3:
    # mean of (33.33.. x 4, 100 x 2) = 55.5556 -> 55.56, while averaging rounded values would give 55.55
    scores = np.array([[1.0, 0.2, 0.3], [0.9, 0.1, 0.5], [0.9, 0.5, 0.1]], dtype=np.float32)
    metrics = retrieval_metrics(scores, np.eye(3, dtype=np.float32), np.array([0, 1, 2]), ks=(1, 2, 3))
    assert [metrics[k] for k in ("i2t_R@1", "i2t_R@2", "t2i_R@1", "t2i_R@2")] == [33.33] * 4
    assert metrics["i2t_R@3"] == metrics["t2i_R@3"] == 100.0
    assert metrics["mean_recall"] == 55.56


def test_csv_split_groups_captions_per_sorted_image(tmp_path: Path) -> None:
    csv = tmp_path / "rsitmd_test.csv"
    csv.write_text('filename,title\nb.tif,"b one, with comma"\na.tif,a one\nb.tif,b two\na.tif,a two\n')
    split = read_csv_split(csv)
    assert split.images == ["a.tif", "b.tif"]
    assert split.captions == ["a one", "a two", "b one, with comma", "b two"]
    assert split.caption_image.tolist() == [0, 0, 1, 1]


def test_csv_split_gb18030(tmp_path: Path) -> None:
    csv = tmp_path / "rsicd_test.csv"
    csv.write_bytes("filename,title\nx.jpg,机场 airport\n".encode("gb18030"))
    assert read_csv_split(csv, encoding="gb18030").captions == ["机场 airport"]


def test_csv_split_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,caption\nx,y\n")
    with pytest.raises(ValueError, match="filename"):
        read_csv_split(bad)
    with pytest.raises(FileNotFoundError):
        read_csv_split(tmp_path / "missing.csv")


def test_txt_split_and_length_mismatch(tmp_path: Path) -> None:
    (tmp_path / "caps.txt").write_text("two ships .\nsome trees\nships again\n")
    (tmp_path / "names.txt").write_text("boat_1.tif\nforest_0.tif\nboat_1.tif\n")
    split = read_txt_split(tmp_path / "caps.txt", tmp_path / "names.txt")
    assert split.images == ["boat_1.tif", "forest_0.tif"]
    assert split.captions == ["two ships .", "ships again", "some trees"]
    (tmp_path / "names.txt").write_text("boat_1.tif\n")
    with pytest.raises(ValueError, match="lines"):
        read_txt_split(tmp_path / "caps.txt", tmp_path / "names.txt")
