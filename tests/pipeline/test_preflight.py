"""``rs5m inputs check`` / ``rs5m.pipeline.preflight.check_inputs``: every problem of a config in one run,
fast on the sample world, and no Prefect or Dask started."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from cli.main import main
from rs5m.config import load_build_config
from rs5m.pipeline.preflight import check_inputs
from rs5m.sample import write_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample world's metadata (no images)."""
    out = tmp_path_factory.mktemp("preflight-world")
    write_world(out, images=False)
    return out


def _config(tmp_path: Path, world: Path, **changes: object) -> Path:
    raw = yaml.safe_load((world / "build.yaml").read_text())
    for src in raw["sources"]:  # absolute paths into the world
        src["files"] = [str(world / f) for f in src["files"]]
        for k, v in src.get("options", {}).items():
            if k.endswith("_file"):
                src["options"][k] = str(world / v)
    raw.pop("sample_server", None)
    raw.pop("detector", None)
    raw.update(changes)
    path = tmp_path / "build.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sample_world_is_clean_and_fast(tmp_path: Path, world: Path) -> None:
    start = time.perf_counter()
    report = check_inputs(load_build_config(_config(tmp_path, world)))
    assert time.perf_counter() - start < 10
    assert report.ok, [str(p) for p in report.problems]
    by_name = {s.name: s for s in report.sources}
    assert by_name["laion2b"].layouts() == ["laion-original"] and by_name["laion2b"].rows() == 300
    assert by_name["yfcc15m"].layouts() == ["yfcc-tsv-23"] and by_name["yfcc15m"].rows() is None
    assert by_name["redcaps"].layouts() == ["redcaps-json"] and len(by_name["redcaps"].files) == 3
    assert all(f.pieces == 1 for s in report.sources for f in s.files)


def test_every_problem_reported_in_one_run(tmp_path: Path, world: Path) -> None:
    (tmp_path / "a-directory.parquet").mkdir()
    truncated = tmp_path / "part-00001.parquet"
    data = (world / "coyo700m").glob("*.parquet").__next__().read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    wrong = tmp_path / "cc12m.parquet"  # CC12M's reader finds no url/caption columns in it
    pq.write_table(pa.table({"foo": [1], "bar": ["x"]}), wrong)
    raw = yaml.safe_load(_config(tmp_path, world).read_text())
    src = {s["name"]: s for s in raw["sources"]}
    src["laion2b"]["files"].append(str(tmp_path / "laion2b-missing" / "part-*.parquet"))
    src["laion400m"]["files"] = [str(tmp_path / "a-directory.parquet")]
    src["coyo700m"]["files"].append(str(truncated))
    src["cc12m"]["files"] = [str(wrong)]
    src["yfcc15m"]["options"]["subset_file"] = str(tmp_path / "no-subset.tsv.bz2")
    src["wit"]["options"]["caption_fields"] = ["page_title"]
    raw["detector"] = str(tmp_path / "detectors" / "detector.pt")
    raw["rs3"] = {"sources": [{"name": "fmow", "root": str(tmp_path / "no-fmow")}]}
    config = tmp_path / "broken.yaml"
    config.write_text(yaml.safe_dump(raw))

    report = check_inputs(load_build_config(config))
    texts = [str(p) for p in report.problems]
    expected = [  # in the config's source order, then the other paths
        ("laion2b", "no file matches"),
        ("coyo700m", "not a readable parquet file"),
        ("laion400m", "is a directory, expected a file"),
        ("wit", "option caption_fields.0: Input should be"),
        ("yfcc15m", "option subset_file: missing file"),
        ("cc12m", "not a CC12M parquet file in any known layout (tried: hf-parquet (image_url, caption)"),
        (None, "detector checkpoint: missing file"),
        (None, "rs3 source fmow root: missing folder"),
    ]
    assert len(report.problems) == len(expected), texts
    for (source, needle), problem in zip(expected, report.problems, strict=True):
        assert problem.source == source and needle in problem.message, (source, needle, str(problem))
    assert report.problems[1].path == str(truncated)
    assert all("\n" not in t for t in texts)
    coyo = next(s for s in report.sources if s.name == "coyo700m")
    assert [f.layout for f in coyo.files] == ["coyo", None]  # the good file still reported

    # the command: a table and every problem, exit 2; --format json for scripts
    code = main(["inputs", "check", "--config", str(config)])
    assert code == 2
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "inputs", "check", "--config", str(config), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 2
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and len(doc["problems"]) == len(expected)
    assert {s["name"]: s["layouts"] for s in doc["sources"]}["laion2b"] == ["laion-original"]


def test_the_command_starts_no_prefect_or_dask(tmp_path: Path, world: Path) -> None:
    probe = (
        "import sys; from cli.main import main; code = main(sys.argv[1:]); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('prefect', 'distributed', 'dask')]; "
        "print('LOADED', bad); sys.exit(code)"
    )
    config = _config(tmp_path, world)
    out = subprocess.run(
        [sys.executable, "-c", probe, "inputs", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "LOADED []" in out.stdout
    assert "all inputs ok" in out.stdout and "laion-original" in out.stdout


def test_full_deployment_config_is_valid() -> None:
    """deployments/full.yaml loads, every source's options validate, and without the metadata folder
    the check names every missing input (and nothing else about the sources)."""
    cfg = load_build_config(ROOT / "deployments" / "full.yaml")
    report = check_inputs(cfg)
    source_problems = [p for p in report.problems if p.source]
    assert {p.source for p in source_problems} == {s.name for s in cfg.sources}
    missing = [
        p for p in source_problems if p.message.startswith("no file matches") or "missing file" in p.message
    ]
    assert missing == source_problems, [str(p) for p in source_problems]
    yfcc = next(s for s in cfg.sources if s.name == "yfcc15m")
    assert yfcc.files[0].endswith("yfcc100m_dataset.sql")
