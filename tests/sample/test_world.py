"""The sample world: official formats readable by plain libraries, deterministic, self-consistent."""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from PIL import Image

from cli.commands import sample as sample_cmd
from rs5m.config import load_build_config
from rs5m.core.schema import SOURCE_ORDER
from rs5m.sample import INGEST_REASONS, write_world
from rs5m.sample.captions import match_patterns
from rs5m.sample.plan import SLOW_SLEEP_S
from rs5m.sample.server import ROUTES_FILE
from rs5m.sample.textwriters import WIT_HEADER
from rs5m.sample.vocab import KEYWORD_PATTERNS
from rs5m.sample.writers import COCO_SCHEMA, COYO_SCHEMA, LAION_SCHEMA

REPO = Path(__file__).resolve().parents[2]


def _metadata_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "images" not in p.parts}  # fmt: skip


def test_same_seed_same_bytes(world: Path, tmp_path: Path) -> None:
    write_world(tmp_path / "again", images=False)
    write_world(tmp_path / "other", seed=1, images=False)
    first, again = _metadata_files(world), _metadata_files(tmp_path / "again")
    assert first == again
    other = _metadata_files(tmp_path / "other")
    assert other.keys() == first.keys()
    assert other["cc12m/cc12m.tsv"] != first["cc12m/cc12m.tsv"]


def _count_rows(world: Path, name: str, files: list[str]) -> int:
    paths = [world / f for f in files]
    if name in ("laion2b", "laion400m", "coyo700m", "laioncoco"):
        schema = {"laion2b": LAION_SCHEMA, "laion400m": LAION_SCHEMA, "coyo700m": COYO_SCHEMA}.get(
            name, COCO_SCHEMA
        )
        meta = pq.ParquetFile(paths[0])
        assert meta.schema_arrow.names == schema.names
        assert meta.metadata.num_row_groups > 1
        assert meta.metadata.row_group(0).column(0).compression == "SNAPPY"
        return pq.read_table(paths[0]).num_rows
    if name == "wit":
        lines = gzip.decompress(paths[0].read_bytes()).split(b"\n")[:-1]
        header = next(csv.reader(io.StringIO(lines[0].decode()), delimiter="\t"))
        assert header == WIT_HEADER and len(header) == 17
        return len(lines) - 1
    if name == "yfcc15m":
        lines = bz2.decompress(paths[0].read_bytes()).split(b"\n")[:-1]
        assert sum(len(line.split(b"\t")) == 23 for line in lines) == len(lines) - 1  # one malformed line
        return len(lines)
    if name in ("cc12m", "cc3m"):
        return len(paths[0].read_bytes().split(b"\n")) - 1
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    if name == "redcaps":
        assert all(set(d) == {"info", "annotations"} for d in docs)
        return sum(len(d["annotations"]) for d in docs)
    if name == "sbu":
        assert len(docs[0]["image_urls"]) == len(docs[0]["captions"]) == len(docs[0]["user_ids"])
        return len(docs[0]["image_urls"])
    return len(docs[0])  # vg: one entry per image


def test_files_parse_and_amounts_match(world: Path, expected: dict[str, Any]) -> None:
    assert list(expected["sources"]) == SOURCE_ORDER
    for name, e in expected["sources"].items():
        assert _count_rows(world, name, e["files"]) == e["amount"], name
    regions = json.loads((world / "vg/region_descriptions.json").read_text(encoding="utf-8"))
    assert {r["id"] for r in regions} == {
        i["image_id"] for i in json.loads((world / "vg/image_data.json").read_text())
    }
    labels = (world / "cc3m/Image_Labels_Subset_Train_GCC-Labels-training.tsv").read_text().splitlines()
    assert labels and all(len(line.split("\t")) == 5 for line in labels)


def test_expected_is_consistent(expected: dict[str, Any]) -> None:
    covered: set[str] = set()
    for name, e in expected["sources"].items():
        assert list(e["rejected"]) == list(INGEST_REASONS)
        assert e["amount"] == e["kept"] + sum(e["rejected"].values()), name
        assert 20 <= e["amount"] <= 300 and 0 < e["keyword_hits"] <= e["kept"]
        assert max(e["per_keyword"].values()) <= e["keyword_hits"] <= sum(e["per_keyword"].values())
        p = e["planted"]
        missing = len(p["missing_images"])
        assert p["hits_valid_images"] <= p["hits_downloadable"] <= e["keyword_hits"] - missing
        covered |= set(e["per_keyword"])
    assert covered == set(KEYWORD_PATTERNS)
    t = expected["totals"]
    assert t["amount"] < 2000 and t["amount"] == t["kept"] + sum(t["rejected"].values())
    assert all(n > 0 for r, n in t["rejected"].items())


def test_plain_read_hits_match_expected(world: Path, expected: dict[str, Any]) -> None:
    """Recount hits for three sources with plain readers and the reference matcher."""
    lines = (world / "cc12m/cc12m.tsv").read_text("utf-8", "replace").splitlines()
    ok = [f for f in (line.split("\t") for line in lines) if len(f) == 2 and f[0].startswith("http") and f[1]]
    hits = sum(bool(match_patterns(f[1])) for f in ok if "\ufffd" not in f[1])
    assert hits == expected["sources"]["cc12m"]["keyword_hits"]
    sbu = json.loads((world / "sbu/sbu-captions-all.json").read_text(encoding="utf-8"))
    pairs = [(u, c) for u, c in zip(sbu["image_urls"], sbu["captions"], strict=True) if u and c]
    hits = sum(bool(match_patterns(c)) for u, c in pairs if u.startswith("http"))
    assert hits == expected["sources"]["sbu"]["keyword_hits"]
    coco = pq.read_table(world / expected["sources"]["laioncoco"]["files"][0]).to_pylist()
    ok = [r for r in coco if r["URL"] and r["URL"].startswith("http") and r["all_captions"]]
    hits = sum(bool(match_patterns(". ".join(r["all_captions"]))) for r in ok)
    assert hits == expected["sources"]["laioncoco"]["keyword_hits"]
    dups = sum(e["planted"]["duplicate_records"] for e in expected["sources"].values())
    assert dups == 11 and len({r["hash"] for r in coco}) == len(coco) - 1


def test_build_yaml_and_deployment(world: Path, expected: dict[str, Any]) -> None:
    cfg = load_build_config(world / "build.yaml")
    assert cfg.version == "sample" and [s.name for s in cfg.sources] == SOURCE_ORDER
    assert cfg.sample_server is not None and Path(cfg.sample_server.root) == (world / "images").resolve()
    for s in cfg.sources:
        assert all(Path(f).is_file() for f in s.files)
        assert all(Path(v).is_file() for k, v in s.options.items() if k.endswith("_file"))
    deployed = load_build_config(REPO / "deployments/sample.yaml")
    base = (REPO / "data/sample-world").resolve()
    for mine, dep in zip(cfg.sources, deployed.sources, strict=True):
        assert mine.name == dep.name
        assert [Path(f).relative_to(world.resolve()) for f in mine.files] == [
            Path(f).resolve().relative_to(base) for f in dep.files
        ]
        assert mine.options.keys() == dep.options.keys()
    assert deployed.sample_server and deployed.sample_server.port == int(
        expected["base_url"].rsplit(":", 1)[1]
    )


def test_urls_resolve_to_images(image_world: Path) -> None:
    exp = json.loads((image_world / "expected.json").read_text(encoding="utf-8"))
    planted = exp["sources"]["laion2b"]["planted"]
    base, checked = exp["base_url"] + "/", 0
    for r in pq.read_table(image_world / exp["sources"]["laion2b"]["files"][0]).to_pylist():
        if not (r["URL"] or "").startswith(base):
            continue
        path = image_world / "images" / r["URL"][len(base) :].split("?")[0]
        if r["URL"] in planted["missing_images"] or r["URL"] in planted["timeouts"]:
            assert not path.exists()
        elif planted["invalid_images"].get(r["URL"]) == "bomb":
            with pytest.raises(Image.DecompressionBombError):
                Image.open(path)
            assert path.stat().st_size < 200_000
        elif r["URL"] in planted["invalid_images"]:
            with pytest.raises(OSError):
                Image.open(path).load()
        else:
            with Image.open(path) as img:
                assert img.size == (r["WIDTH"], r["HEIGHT"]) and 64 <= min(img.size) and max(img.size) <= 320
            checked += 1
    assert checked >= 80 - 2 - 3 - 1 - 1 - 1  # all but missing, invalid, timeout, missing_url, bad_url rows
    files = [p for p in (image_world / "images").rglob("*") if p.is_file() and p.name != ROUTES_FILE]
    assert exp["totals"]["images"] == len(files)
    routes = json.loads((image_world / "images" / ROUTES_FILE).read_text(encoding="utf-8"))
    slow = [u[len(base) - 1 :].split("?")[0] for u in planted["timeouts"]]
    redirects = exp["sources"]["coyo700m"]["planted"]["private_redirects"]
    assert {p: r["sleep"] for p, r in routes.items() if "sleep" in r} == dict.fromkeys(slow, SLOW_SLEEP_S)
    assert {p: r["redirect"] for p, r in routes.items() if "redirect" in r} == {
        u[len(base) - 1 :].split("?")[0]: t for u, t in redirects.items()
    }
    for source in ("coyo700m", "wit"):
        for near, orig in exp["sources"][source]["planted"]["near_duplicates"]:
            a, b = (Image.open(image_world / "images" / u[len(base) :].split("?")[0]) for u in (near, orig))
            assert a.size == (max(64, int(b.size[0] * 0.85)), max(64, int(b.size[1] * 0.85)))
    assert all(
        u.startswith(base + "laion2b/") for u in exp["sources"]["laioncoco"]["planted"]["url_duplicates"]
    )


def test_images_are_deterministic(image_world: Path, small_plans: dict[str, Any], tmp_path: Path) -> None:
    write_world(tmp_path, plans=small_plans)
    mine = sorted((image_world / "images").rglob("*.*"))
    assert [p.read_bytes() for p in mine] == [
        (tmp_path / p.relative_to(image_world)).read_bytes() for p in mine
    ]


def test_cli_writes_a_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(sample_cmd, "write_world", lambda out, **kw: write_world(out, images=False, **kw))
    parser = argparse.ArgumentParser()
    sample_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["sample", "--out", str(tmp_path / "w"), "--seed", "3", "--port", "18999"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "LAION2B" in out and "Total" in out and "1550" in out
    assert "127.0.0.1:18999" in (tmp_path / "w/cc12m/cc12m.tsv").read_text("utf-8", "replace")
    bad = parser.parse_args(["sample", "--out", str(tmp_path / "x"), "--real-data", str(tmp_path / "nope")])
    with pytest.raises(FileNotFoundError):
        bad.func(bad)
