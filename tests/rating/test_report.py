"""Report: B11-style means/std, kappa against known values, audit shares, CSV export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from rs5m.rating import sessions
from rs5m.rating.agreement import agreement_rows, cohen_kappa, fleiss_kappa
from rs5m.rating.report import build_report, display_summary, write_csv
from rs5m.rating.sampling import SampleSpec, draw_sample
from rs5m.rating.store import RatingStore, save_rating


def test_fleiss_kappa_matches_the_textbook_example() -> None:
    # Fleiss (1971) style worked example: 10 items, 14 raters, 5 categories; kappa = 0.210.
    counts = np.array(
        [
            [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
        ]
    )  # fmt: skip
    kappa, agree = fleiss_kappa(counts)
    assert kappa == pytest.approx(0.210, abs=5e-4)
    assert agree == pytest.approx(0.378, abs=5e-4)
    assert fleiss_kappa(np.array([[2, 0, 0, 0, 0], [3, 0, 0, 0, 0]]))[0] is None
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[1, 0, 0, 0, 0]]))


def test_cohen_kappa_matches_sklearn() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    a = rng.integers(1, 6, 40).tolist()
    b = [min(5, max(1, x + int(rng.integers(-1, 2)))) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(sklearn_metrics.cohen_kappa_score(a, b))
    assert cohen_kappa(a, b, "quadratic") == pytest.approx(
        sklearn_metrics.cohen_kappa_score(a, b, weights="quadratic")
    )
    assert cohen_kappa([5, 5], [5, 5]) is None
    assert cohen_kappa([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_agreement_rows_use_only_multiply_rated_pairs() -> None:
    ratings = [
        {"uid": u, "rater": r, "relevance": v, "hallucination": 5, "fluency": None}
        for u, r, v in [("a", "x", 5), ("a", "y", 5), ("b", "x", 2), ("b", "y", 3), ("c", "x", 1)]
    ]
    rel, hal, flu = agreement_rows(ratings, ["relevance", "hallucination", "fluency"])
    assert (rel["pairs"], rel["raters"], rel["observed_agreement"]) == (2, 2, 0.5)
    assert rel["cohen_kappa"] is not None
    assert hal["fleiss_kappa"] is None and hal["observed_agreement"] == 1.0
    assert flu["pairs"] == 0 and flu["fleiss_kappa"] is None


@pytest.fixture()
def rated(store: RatingStore, rating_root: Path) -> RatingStore:
    """Two raters on the kept sample and one on an outlier audit of ``v1``."""
    vdir = rating_root / "versions" / "v1"
    for spec in (SampleSpec("v1", n=6), SampleSpec("v1", audit="outlier", n=8)):
        store.call(sessions.ensure_sample, spec, lambda spec=spec: draw_sample(vdir, spec))
    answers = {
        ("cc12m-0", "ann"): (5, 5, 5), ("cc12m-0", "bob"): (4, 5, 5),
        ("cc12m-3", "ann"): (3, 4, 5), ("cc12m-3", "bob"): (3, 4, 4),
        ("laion2b-0", "ann"): (1, 2, 4), ("laion2b-0", "bob"): (2, 1, 4),
        ("laion2b-2", "ann"): (4, 4, 4),
        ("cc12m-1", "ann"): (5, 4, 5), ("laion2b-1", "ann"): (1, 1, 3),
    }  # fmt: skip
    for (uid, rater), (r, h, f) in answers.items():
        store.call(save_rating, "v1", uid, rater, {"relevance": r, "hallucination": h, "fluency": f})
    store.call(save_rating, "v1", "cc12m-4", "ann", None, None, "image missing")
    return store


def test_report_tables(rated: RatingStore) -> None:
    rep = rated.call(build_report, "v1")
    assert rep["raters"] == ["ann", "bob"] and rep["ratings"] == 10 and rep["pairs"] == 7
    cc = next(r for r in rep["summary"] if r["source"] == "cc12m")
    assert (cc["pairs"], cc["ratings"], cc["broken"]) == (4, 5, 1)
    assert cc["relevance_mean"] == pytest.approx(np.mean([5, 4, 3, 3, 5]))
    assert cc["relevance_std"] == pytest.approx(np.std([5, 4, 3, 3, 5], ddof=1))
    assert rep["summary"][-1]["source"] == "(all)" and rep["summary"][-1]["ratings"] == 9
    shown = display_summary(rep["summary"])
    assert [r["Source"] for r in shown] == ["LAION2B", "CC12M", "(all)"]  # RS5M table order
    assert shown[1]["Relevance & Detail"] == "4.00 ± 1.00"
    rel = next(a for a in rep["agreement"] if a["scale"] == "relevance")
    assert (rel["pairs"], rel["raters"]) == (3, 2)
    audit = {r["source"]: r for r in rep["audit"] if r["stage"] == "outlier"}
    # removed: cc12m-1 good, laion2b-1 bad; kept and rated: cc12m-0 good, cc12m-3 fair,
    # cc12m-4 broken (bad), laion2b-0 bad, laion2b-2 good
    assert audit["(all)"]["removed_rated"] == 2 and audit["(all)"]["removed_good_share"] == 0.5
    assert audit["(all)"]["kept_rated"] == 5 and audit["(all)"]["kept_bad"] == 2
    assert audit["cc12m"]["removed_good_share"] == 1.0 and audit["laion2b"]["kept_bad_share"] == 0.5


def test_csv_export(rated: RatingStore, tmp_path: Path) -> None:
    n = rated.call(write_csv, "v1", tmp_path / "out" / "ratings.csv")
    with open(tmp_path / "out" / "ratings.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) == 10
    row = next(r for r in rows if r["uid"] == "cc12m-1")
    assert row["audit"] == "outlier:removed" and row["caption"] == "aerial view of cc12m scene 1"
    assert next(r for r in rows if r["uid"] == "cc12m-4")["broken"] == "image missing"


def test_report_without_ratings_is_a_clear_error(store: RatingStore) -> None:
    with pytest.raises(ValueError, match="no ratings for version 'v1' yet"):
        store.call(build_report, "v1")
