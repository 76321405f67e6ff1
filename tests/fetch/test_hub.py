"""Hub parts fetched by the real huggingface_hub client from the local stand-in (``HF_ENDPOINT``)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rs5m.fetch.run import fetch_metadata
from tests.fetch.conftest import entry
from tests.hub_stub import Repo, git_sha1


def _part(repo_id: str, patterns: list[str], **kw) -> dict:
    return {"kind": "hf_repo", "repo_id": repo_id, "repo_type": "dataset", "allow_patterns": patterns, **kw}


def _coyo(hub) -> Repo:
    files = {f"data/part-0000{i}.snappy.parquet": os.urandom(4000 + i) for i in range(3)}
    files.update({"README.md": b"# coyo\n", "data/notes.txt": b"small"})
    return hub.add(Repo("kakaobrain/coyo-700m", "dataset", files, lfs_min=1000))


def test_hub_files_land_where_the_build_reads_them_and_reruns_download_nothing(
    hub, catalogue, config
) -> None:
    repo = _coyo(hub)
    cat = catalogue(
        coyo700m=entry(
            "coyo-700m", _part(repo.repo_id, ["data/part-*.parquet", "data/*.txt"], strip_prefix="data/")
        )
    )
    report = fetch_metadata(config(cat))
    assert report.errors == [] and report.count("fetched") == 4
    dest = Path(report.dest) / "coyo-700m"
    for path, data in repo.files.items():
        if path.startswith("data/"):
            assert (dest / path.removeprefix("data/")).read_bytes() == data
    assert not (dest / "README.md").exists() and not (dest / "data").exists()
    manifest = json.loads((Path(report.dest) / "fetch-manifest.json").read_text())["files"]
    part0 = manifest["coyo-700m/part-00000.snappy.parquet"]
    assert part0["revision"] == repo.commit and part0["kind"] == "hf_repo"
    assert part0["sha256"] == hashlib.sha256(repo.files["data/part-00000.snappy.parquet"]).hexdigest()
    assert manifest["coyo-700m/notes.txt"]["git_sha1"] == git_sha1(b"small")  # not LFS: git blob id
    downloads = dict(repo.downloads)
    again = fetch_metadata(config(cat))
    assert again.errors == [] and again.count("present") == 4 and repo.downloads == downloads


def test_gated_repo_is_one_line_naming_the_terms_page_and_the_token(
    hub, catalogue, config, monkeypatch
) -> None:
    gated = hub.add(
        Repo(
            "laion/relaion2B-en-research-safe",
            "dataset",
            {"part-0.parquet": os.urandom(3000)},
            gated_token="ok",
        )
    )
    open_repo = _coyo(hub)
    terms = "https://huggingface.co/datasets/laion/relaion2B-en-research-safe"
    cat = catalogue(
        laion2b=entry("laion2b-en", _part(gated.repo_id, ["*.parquet"], gated=True, terms_url=terms)),
        coyo700m=entry("coyo-700m", _part(open_repo.repo_id, ["data/part-*.parquet"], strip_prefix="data/")),
    )
    report = fetch_metadata(config(cat))
    assert report.exit_code() == 2 and report.count("fetched") == 3  # the other source still came
    [line] = report.errors
    assert "laion2b: laion/relaion2B-en-research-safe is gated (401)" in line and terms in line
    assert "HF_TOKEN" in line and "\n" not in line and gated.downloads == {}
    monkeypatch.setenv("HF_TOKEN", "wrong")
    [line] = fetch_metadata(config(cat, sources=["laion2b"])).errors
    assert "is gated (403)" in line
    monkeypatch.setenv("HF_TOKEN", "ok")
    report = fetch_metadata(config(cat, sources=["laion2b"]))
    assert report.errors == [] and (Path(report.dest) / "laion2b-en" / "part-0.parquet").is_file()


def test_gating_found_only_at_download_is_reported_once(hub, catalogue, config) -> None:
    files = {f"p{i}.parquet": os.urandom(2000) for i in range(4)}
    repo = hub.add(Repo("laion/relaion-coco", "dataset", files, gated_token="ok"))
    cat = catalogue(laioncoco=entry("laion-coco", _part(repo.repo_id, ["*.parquet"])))  # not flagged gated
    report = fetch_metadata(config(cat, workers=1))
    assert (
        len(report.errors) == 1
        and "laion/relaion-coco" in report.errors[0]
        and "HF_TOKEN" in report.errors[0]
    )


def test_missing_repo_no_match_and_unreachable_hub_are_one_line(hub, catalogue, config, monkeypatch) -> None:
    repo = _coyo(hub)
    cat = catalogue(
        coyo700m=entry("coyo-700m", _part(repo.repo_id, ["nothing/*.parquet"])),
        laion400m=entry("laion400m-meta", _part("laion/relaion400m", ["*.parquet"])),
    )
    errors = fetch_metadata(config(cat)).errors
    assert len(errors) == 2 and all("\n" not in e for e in errors)
    assert "no file of kakaobrain/coyo-700m@main matches ['nothing/*.parquet']" in errors[0]
    assert "laion/relaion400m not found on" in errors[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    [line] = fetch_metadata(config(cat, sources=["coyo700m"])).errors
    assert "cannot reach http://127.0.0.1:" in line and "check the network" in line


@pytest.mark.parametrize("fault", ["corrupt", "cut"])
def test_hub_transfer_faults_are_repaired(hub, catalogue, config, fault: str) -> None:
    repo = _coyo(hub)
    path = "data/part-00001.snappy.parquet"
    key, data = f"dataset:{repo.repo_id}:{path}", repo.files[path]
    if fault == "corrupt":
        hub.serve_once[key] = bytes(b ^ 0xFF for b in data)  # same size: only our sha256 check sees it
    else:
        hub.cut_after[key] = 1500  # huggingface_hub retries the dropped transfer itself
    cat = catalogue(coyo700m=entry("coyo-700m", _part(repo.repo_id, [path], strip_prefix="data/")))
    report = fetch_metadata(config(cat))
    assert report.errors == []
    assert (Path(report.dest) / "coyo-700m" / "part-00001.snappy.parquet").read_bytes() == data
    assert hub.bytes_served[key] == 2 * len(data) if fault == "corrupt" else 1500 + len(data)


KILLED_RUN = """
import sys
from rs5m.config.fetch import FetchConfig
from rs5m.fetch.run import fetch_metadata
fetch_metadata(FetchConfig(dest=sys.argv[1], catalogue=sys.argv[2], workers=1))
"""


def test_a_rerun_after_a_kill_fetches_only_what_was_not_finished(hub, catalogue, config, tmp_path) -> None:
    # huggingface_hub 2.4 keeps no partial file across processes: the file in flight restarts, the
    # finished ones are skipped by the manifest
    files = {"data/part-0.parquet": os.urandom(3000), "data/part-1.parquet": os.urandom(2 << 20)}
    repo = hub.add(Repo("kakaobrain/coyo-700m", "dataset", files))
    key = f"dataset:{repo.repo_id}:data/part-1.parquet"
    hub.stall_after[key] = 1 << 20
    cat = catalogue(
        coyo700m=entry("coyo-700m", _part(repo.repo_id, ["data/*.parquet"], strip_prefix="data/"))
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path / "dest"), str(cat)], env=env)
    try:
        deadline = time.monotonic() + 60
        while hub.bytes_served[key] < 1 << 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert repo.downloads == {"data/part-0.parquet": 1, "data/part-1.parquet": 1}
    report = fetch_metadata(config(cat))
    assert report.errors == [] and [r["status"] for r in report.rows] == ["present", "fetched"]
    for path, data in files.items():
        assert (Path(report.dest) / "coyo-700m" / path.removeprefix("data/")).read_bytes() == data
    assert repo.downloads == {"data/part-0.parquet": 1, "data/part-1.parquet": 2}
