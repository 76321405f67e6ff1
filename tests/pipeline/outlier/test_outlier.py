"""The pooled-quantile decision and the keep grid on hand-written scores (no model)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.config import OutlierConfig
from rs5m.core.io import write_parquet
from rs5m.pipeline.outlier.decision import decide_outliers, decisions_path, grid_path, keep_grid, stats_path
from rs5m.pipeline.outlier.scores import SCORE_SCHEMA, scores_path

SOURCES = ["laion2b", "cc3m"]


def _write_scores(vdir: Path, n: int = 20, seed: int = 0, detector: bool = True) -> dict[str, np.ndarray]:
    """n rows per source (2n pooled): distinct s_vlm and c_rs, shuffled independently."""
    rng = np.random.default_rng(seed)
    s = rng.permutation(2 * n).astype(np.float32) / (2 * n)
    c = rng.permutation(2 * n).astype(np.float32) / (2 * n)
    uids = np.array([f"{src}-{i:04d}" for src in SOURCES for i in range(n)])
    sources = np.repeat(SOURCES, n)
    for src in SOURCES:
        m = sources == src
        cols = {"uid": uids[m].tolist(), "source": sources[m].tolist(), "s_vlm": s[m], "s_caption": s[m]}
        cols["c_rs"] = c[m] if detector else pa.nulls(int(m.sum()), pa.float32())
        write_parquet(scores_path(vdir, src, "p0"), pa.table(cols, schema=SCORE_SCHEMA))
    kept = {"uid": uids.tolist(), "source": sources.tolist(), "dup_keep": [True] * len(uids)}
    write_parquet(vdir / "dedup" / "decisions.parquet", pa.table(kept))
    return {"uid": uids, "source": sources, "s": s, "c": c}


def _brute(s: np.ndarray, c: np.ndarray, fv: float, fr: float) -> int:
    m = np.sort(s)[::-1][int(np.ceil(round(fv * len(s), 6))) - 1]
    n = np.sort(c)[::-1][int(np.ceil(round(fr * len(c), 6))) - 1]
    return int(((s >= m) & (c >= n)).sum())


def test_pooled_decision_keeps_the_top_fractions(tmp_path: Path) -> None:
    data = _write_scores(tmp_path)
    stats = decide_outliers(tmp_path, SOURCES, OutlierConfig())
    dec = pq.read_table(decisions_path(tmp_path)).to_pydict()
    keep, s, c = np.array(dec["keep_outlier"]), np.array(dec["s_vlm"]), np.array(dec["c_rs"])
    s_ok, c_ok = s >= np.sort(s)[::-1][35], c >= np.sort(c)[::-1][31]  # 90 % of 40 = 36; 80 % = 32
    assert s_ok.sum() == 36 and c_ok.sum() == 32
    np.testing.assert_array_equal(keep, s_ok & c_ok)
    want = np.where(
        keep, None, np.where(~s_ok & ~c_ok, "outlier_both", np.where(~s_ok, "outlier_vlm", "outlier_rs"))
    )
    assert dec["reason"] == want.tolist()
    assert sorted(dec["uid"]) == dec["uid"] == sorted(data["uid"].tolist())
    by_source = {st.source: st for st in stats}
    assert sum(st.n_out for st in stats) == int(keep.sum())
    for src in SOURCES:
        st = by_source[src]
        assert st.stage == "outlier" and st.n_in == 20 and st.partition == "global"
        assert st.n_out == int(keep[np.array(dec["source"]) == src].sum())
        assert stats_path(tmp_path, src).is_file()


def test_grid_matches_brute_force_and_fig13_corners(tmp_path: Path) -> None:
    data = _write_scores(tmp_path, seed=5)
    cfg = OutlierConfig()
    rows = keep_grid(tmp_path, SOURCES, cfg)
    assert [r["vlm_top_pct"] for r in rows] == ["100", "95", "90", "85", "80", "75", "70", "65", "60"]
    assert rows[0]["rs_top_100"] == 40  # everything scored
    for r, fv in zip(rows, cfg.grid, strict=True):
        for fr in cfg.grid:
            assert r[f"rs_top_{fr * 100:g}"] == _brute(data["s"], data["c"], fv, fr)
    decide_outliers(tmp_path, SOURCES, cfg)
    with open(grid_path(tmp_path), newline="") as fh:
        written = list(csv.DictReader(fh))
    assert [{k: int(v) if k != "vlm_top_pct" else v for k, v in w.items()} for w in written] == rows
    kept = sum(st.n_out for st in decide_outliers(tmp_path, SOURCES, cfg))
    assert kept == rows[2]["rs_top_80"]  # the chosen (90 %, 80 %) cell


def test_new_fractions_rerun_only_the_decision(tmp_path: Path) -> None:
    _write_scores(tmp_path)
    first = decide_outliers(tmp_path, SOURCES, OutlierConfig())
    score_file = scores_path(tmp_path, "laion2b", "p0")
    before = score_file.stat().st_mtime_ns
    decision_mtime = decisions_path(tmp_path).stat().st_mtime_ns
    assert decide_outliers(tmp_path, SOURCES, OutlierConfig()) == first  # same fractions: not redone
    assert decisions_path(tmp_path).stat().st_mtime_ns == decision_mtime
    looser = decide_outliers(tmp_path, SOURCES, OutlierConfig(keep_top_vlm=1.0, keep_top_rs=1.0))
    assert sum(st.n_out for st in looser) == 40 and score_file.stat().st_mtime_ns == before
    assert sum(st.n_out for st in first) < 40


def test_without_detector_only_s_vlm_decides(tmp_path: Path) -> None:
    _write_scores(tmp_path, detector=False)
    stats = decide_outliers(tmp_path, SOURCES, OutlierConfig(keep_top_vlm=0.5))
    assert sum(st.n_out for st in stats) == 20
    assert {r for st in stats for r in st.removed} == {"outlier_vlm"}
    assert stats[0].extra["c_rs_threshold"] is None


def test_unscored_rows_are_removed_and_missing_scores_refused(tmp_path: Path) -> None:
    _write_scores(tmp_path)
    table = pq.read_table(scores_path(tmp_path, "cc3m", "p0"))
    nulls = pa.nulls(1, pa.float32())
    s = pa.concat_arrays([nulls, table["s_vlm"].combine_chunks()[1:]])
    c = pa.concat_arrays([nulls, table["c_rs"].combine_chunks()[1:]])
    table = table.set_column(2, "s_vlm", s).set_column(4, "c_rs", c)
    write_parquet(scores_path(tmp_path, "cc3m", "p0"), table)
    stats = {
        st.source: st
        for st in decide_outliers(tmp_path, SOURCES, OutlierConfig(keep_top_vlm=1, keep_top_rs=1))
    }
    assert stats["cc3m"].removed == {"outlier_unscored": 1} and stats["cc3m"].n_out == 19
    write_parquet(scores_path(tmp_path, "cc3m", "p0"), table.slice(1))  # one kept uid has no score row
    with pytest.raises(ValueError, match="1 kept uids unscored"):
        decide_outliers(tmp_path, SOURCES, OutlierConfig(keep_top_vlm=0.5))


def test_fractions_are_validated() -> None:
    with pytest.raises(ValueError):
        OutlierConfig(keep_top_vlm=0)
    with pytest.raises(ValueError):
        OutlierConfig(grid=[1.0, 1.2])
