"""The forecast (rs5m plan): exact and estimated row counts, the arithmetic, timings and the CLI."""

from __future__ import annotations

import bz2
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli.main import main
from rs5m.config import BuildConfig, SourceInput
from rs5m.core.layout import DataRoot
from rs5m.core.published import funnel_shares
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats
from rs5m.pipeline import forecast
from rs5m.pipeline.timing import actual_rates, timed


def _inputs(tmp: Path) -> BuildConfig:
    pq.write_table(pa.table({"URL": ["http://a/1"] * 1000, "TEXT": ["x"] * 1000}), tmp / "part-0.parquet")
    line = "http://example.com/some/image/path.jpg\ta caption of moderate length\n"
    (tmp / "cc12m.tsv").write_text(line * 20_000)
    (tmp / "yfcc.bz2").write_bytes(bz2.compress(line.encode() * 5_000))
    return BuildConfig(
        root=str(tmp / "data"),
        sources=[
            SourceInput(name="laion2b", files=[str(tmp / "part-0.parquet")]),
            SourceInput(name="cc12m", files=[str(tmp / "cc12m.tsv")]),
            SourceInput(name="yfcc15m", files=[str(tmp / "yfcc.bz2")]),
        ],
    )


def test_row_counts_exact_for_parquet_estimated_for_text(tmp_path: Path) -> None:
    sizes = {s.source: s for s in forecast.count_rows(_inputs(tmp_path))}
    assert (sizes["laion2b"].rows, sizes["laion2b"].exact) == (1000, True)
    assert sizes["cc12m"].rows == pytest.approx(20_000, rel=0.01) and not sizes["cc12m"].exact
    assert sizes["yfcc15m"].rows == pytest.approx(5_000, rel=0.05)
    assert sizes["yfcc15m"].kind == "compressed_text"


def test_forecast_arithmetic_follows_the_rates(tmp_path: Path) -> None:
    rates = forecast.load_rates()
    sizes = forecast.count_rows(_inputs(tmp_path))
    fc = forecast.forecast(sizes, rates, workers=4, gpus=0)
    laion, f = fc["sources"]["laion2b"], funnel_shares("laion2b")
    assert laion["hits"] == pytest.approx(1000 * f["hit"])
    pool = laion["hits"] * f["download"] * (1 - f["invalid"] - f["duplicate"])
    assert laion["kept"] == pytest.approx(pool * (1 - f["outlier"]))
    stages = {s["stage"]: s for s in forecast.stage_rows(fc)}
    assert stages["outlier_score"]["hours"] == "not measured"  # no GPU rate and no GPU: never invented
    ingest = next(s for s in fc["stages"] if s["stage"] == "ingest+keyword")
    cpu = sum(s.rows / rates["ingest_rows_per_cpu_s"][s.kind] for s in sizes)
    assert ingest["hours"] == pytest.approx(cpu / 4 / 3600)


def test_timing_recorded_only_when_the_partition_did_work(tmp_path: Path) -> None:
    layout = DataRoot.of(tmp_path).version("v")

    def work() -> PartitionStats:
        stats = PartitionStats(stage="download", source="cc12m", partition="p", n_in=10, n_out=8)
        stats.remove("download_failed", 2)
        stats.write(layout.stats(StageName.DOWNLOAD, "cc12m", "p"))
        return stats

    timed(StageName.DOWNLOAD, layout, "cc12m", "p", work)
    record = layout.side(StageName.DOWNLOAD, "timing", "cc12m", "p", ".json")
    first = json.loads(record.read_text())
    assert first["n_in"] == 10 and first["wall_s"] >= 0
    timed(StageName.DOWNLOAD, layout, "cc12m", "p", work)  # done already: the record is kept as it was
    assert json.loads(record.read_text()) == first
    got = actual_rates(layout)["download"]
    assert got["work"] == 10 and got["partitions"] == 1


def test_cli_plan_prints_both_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _inputs(tmp_path)
    path = tmp_path / "build.yaml"
    path.write_text(json.dumps(cfg.model_dump(exclude={"version", "root"})))
    assert main(["plan", "--config", str(path), "--workers", "16", "--gpus", "0"]) == 0
    out = capsys.readouterr().out
    assert "laion2b" in out and re.search(r"~(19|20),\d{3}", out) and "not measured" in out
    assert "16 CPU workers" in out
    assert main(["plan", "--version", "nope", "--root", str(tmp_path)]) == 2
    assert "has no forecast" in capsys.readouterr().err
