"""Stage functions end to end on the miniature world: read -> caption, PUB11 geometa, geo report, funnel."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rs5m.core.layout import DataRoot, VersionLayout
from rs5m.core.schema import StageName
from rs5m.core.stats import PartitionStats
from rs5m.lineage import store as lineage
from rs5m.rs3 import pub11, report, stage
from tests.rs3.conftest import tiny_config

_PUB11 = [
    (
        "yfcc15m",
        "Aerial photo of Venice, Italy",
        {"latitude": 45.43, "longitude": 12.33, "datetaken": "2006-10-03 14:00:00"},
    ),
    ("yfcc15m", "satellite image of farmland", {"latitude": None, "longitude": None, "datetaken": None}),
    (
        "yfcc15m",
        "drone view over Sydney",
        {"latitude": -33.87, "longitude": 151.2, "datetaken": "2010-07-01 08:00:00"},
    ),
    ("cc3m", "aerial view of a city", {"tags": [{"tag": "city", "prob": 0.95}, {"tag": "sky", "prob": 0.2}]}),
    ("cc3m", "google earth view of a lake", None),
    ("redcaps", "aerial view of iceland at sunrise", {"created_utc": 1584537674.0}),
    ("laion2b", "Satellite image of Paris, France", None),
]


def _write_keyword_partitions(vdir: Path) -> None:
    for source in sorted({s for s, _, _ in _PUB11}):
        rows = [
            {"uid": f"{s}-{i}", "source": s, "caption": c, "extras": json.dumps(e) if e else None}
            for i, (s, c, e) in enumerate(_PUB11)
            if s == source
        ]
        path = vdir / "keyword" / source / "part-0.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
    (vdir / "keyword" / "_stats" / "yfcc15m").mkdir(parents=True)


@pytest.fixture(scope="module")
def built(rs3_world, tmp_path_factory):
    vdir = tmp_path_factory.mktemp("version") / "sample"
    cfg = tiny_config(rs3_world)
    parts = stage.plan_partitions(vdir, cfg)
    stats = [stage.read_partition(vdir, s, p, cfg) for s, p in parts]
    stats += [stage.caption_partition(vdir, s, p, cfg) for s, p in parts]
    _write_keyword_partitions(vdir)
    for source, part in pub11.pub11_partitions(vdir):
        stats += pub11.pub11_meta_partition(vdir, source, part, cfg)
    return vdir, cfg, parts, stats


def test_counts_match_the_world(built, rs3_world):
    vdir, _, parts, stats = built
    expected = json.loads((rs3_world / "expected.json").read_text())
    assert parts[:2] == [("fmow", "00000"), ("fmow", "00001")]
    for source in ("fmow", "ben", "millionaid"):
        read = [s for s in stats if s.stage == "read" and s.source == source]
        assert sum(s.n_in for s in read) == expected[source]["listed"]
        assert sum(s.n_out for s in read) == expected[source]["ok"]
        removed: dict[str, int] = {}
        for s in read:
            for k, n in s.removed.items():
                removed[k] = removed.get(k, 0) + n
        assert removed == expected[source]["removed"]
        cap = [s for s in stats if s.stage == "caption" and s.source == source]
        assert sum(s.n_out for s in cap) == expected[source]["ok"]
    for s in stats:
        s.check()


def test_caption_rows(built, rs3_world):
    vdir, *_ = built
    planted = json.loads((rs3_world / "expected.json").read_text())["fmow"]["planted"]
    rows = [
        r
        for _, _, p in VersionLayout.of(vdir).outputs(StageName.RS3_CAPTION)
        for r in pq.read_table(p).to_pylist()
    ]
    assert pq.read_schema(vdir / "rs3/caption/ben/00000.parquet").names[:9] == stage._CAP
    for r in rows:
        prov = json.loads(r["provenance"])
        assert r["blip2_caption"] == prov["final"] and r["rule"] == prov["rule"]
        if r["source"] == "millionaid":
            assert r["meta_caption"] is None and r["caption"] == r["blip2_caption"]
        else:
            assert r["caption"] == f"{r['meta_caption']} {r['blip2_caption']}"
            assert r["lat"] is not None and r["utm_zone"] and r["month"]
            assert json.loads(r["meta"])["family"] == r["source"]
    fmow = {r["name"]: r for r in rows if r["source"] == "fmow"}
    for key, season in planted["seasons"].items():
        row = fmow["fmow_" + Path(key).stem]
        assert season in row["meta_caption"] and planted["locations"][key] in row["meta_caption"]
        assert f"utm zone {planted['utm'][key]}" in row["meta_caption"]
    ben = [r for r in rows if r["source"] == "ben"]
    assert all(Path(r["image_path"]).suffix == ".png" and Path(r["image_path"]).is_file() for r in ben)


def test_rerun_skips_done_partitions(built):
    vdir, cfg, parts, _ = built
    target = stage.rs3_paths(vdir, "captions", *parts[0])
    before = target.stat().st_mtime_ns
    again = stage.caption_partition(vdir, *parts[0], cfg)
    assert target.stat().st_mtime_ns == before and again.n_out == 7
    assert stage.plan_partitions(vdir, cfg) == parts


def test_pub11_geometa(built):
    vdir, *_ = built
    rows = {
        r["uid"]: r
        for _, _, p in VersionLayout.of(vdir).outputs(StageName.META_CAPTION)
        for r in pq.read_table(p).to_pylist()
    }
    assert rows["yfcc15m-0"]["family"] == "yfcc_both" and "Italy in Fall" in rows["yfcc15m-0"]["meta_caption"]
    assert rows["yfcc15m-0"]["places"] == ["Venice", "Italy"] and rows["yfcc15m-0"]["country"] == "Italy"
    assert rows["yfcc15m-1"]["meta_caption"] is None  # no metadata: no (stale) meta-caption
    assert "Winter" in rows["yfcc15m-2"]["meta_caption"]  # July in Sydney
    assert rows["cc3m-3"]["meta_caption"].count("city") == 1 and rows["cc3m-4"]["family"] is None
    assert "March 18, 2020" in rows["redcaps-5"]["meta_caption"]
    assert rows["laion2b-6"]["places"] == ["Paris", "France"] and rows["laion2b-6"]["family"] is None
    places = PartitionStats.read(vdir / "rs3/places/_stats/yfcc15m/part-0.json")
    assert (places.subset, places.n_in, places.n_out, places.removed) == ("geometa", 3, 2, {"no_place": 1})


def test_geo_report_and_funnel(built):
    vdir, *_ = built
    paths = report.geo_report(vdir)
    counts = json.loads(Path(paths["counts"]).read_text())
    located = {r["key"]: r["located"] for r in counts["source"]}
    assert located["fmow"] == 8 and located["ben"] == 6 and located["yfcc15m"] == 2
    assert {"key": "Brazil", "n": 2} in counts["country"]
    assert Path(paths["map"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads(Path(paths["places"]).read_text())["with_place"] == 4
    db = DataRoot.of(vdir.parent).lineage_db
    lineage.load_version(db, "sample", vdir)
    with lineage.connect(db, read_only=True) as con:
        rows = report.rs3_funnel_rows(con, "sample")
        geometa = report.geometa_rows(con, "sample")
    assert rows[0] == {
        "Name": "FMoW",
        "Files": 12,
        "Read": 8,
        "Read failed": 4,
        "Captioned": 8,
        "Caption failed": 0,
    }
    assert [r["Name"] for r in rows] == ["FMoW", "BigEarthNet", "MillionAID", "Total"]
    assert rows[-1]["Captioned"] == 20
    assert {r["source"]: r["meta_captions"] for r in geometa}["yfcc15m"] == 2
