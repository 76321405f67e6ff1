"""Resumable HTTP fetches against a local server: resume, checksums, refetch, 404, If-Range, reruns."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rs5m.fetch.run import fetch_metadata
from tests.fetch.conftest import entry

SIZE = 300_000


def _http(server, name: str, data: bytes, **checks) -> dict:
    server.files[f"/{name}"] = data
    return {"name": name, "urls": [server.url(f"/{name}")], **checks}


def _gets(server, path: str) -> list:
    return [r for r in server.requests if r[0] == "GET" and r[1] == path]


def test_interrupted_transfer_resumes_with_range(files, catalogue, config) -> None:
    data = os.urandom(SIZE)
    spec = _http(files, "a.tsv.gz", data, size=SIZE, sha256=hashlib.sha256(data).hexdigest())
    files.cut_after["/a.tsv.gz"] = 100_000
    cat = catalogue(wit=entry("wit", {"kind": "http", "files": [spec]}))
    report = fetch_metadata(config(cat))
    assert report.errors == [] and report.exit_code() == 0
    dest = Path(report.dest)
    assert (dest / "wit" / "a.tsv.gz").read_bytes() == data
    assert files.bytes_served["/a.tsv.gz"] == SIZE  # nothing was sent twice
    assert [r[2] for r in _gets(files, "/a.tsv.gz")] == [None, "bytes=100000-"]
    manifest = json.loads((dest / "fetch-manifest.json").read_text())["files"]["wit/a.tsv.gz"]
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["size"] == SIZE
    assert manifest["origin"] == files.url("/a.tsv.gz") and manifest["fetched_at"]
    assert not list((dest / "wit").glob("*.part*"))


def test_a_killed_run_resumes_on_rerun_and_a_finished_one_fetches_nothing(files, catalogue, config) -> None:
    data = os.urandom(SIZE)
    spec = _http(files, "b.tsv", data, md5=hashlib.md5(data).hexdigest())  # size unpublished
    files.cut_after["/b.tsv"] = 123_456
    cat = catalogue(cc12m=entry("cc12m", {"kind": "http", "files": [spec]}))
    first = fetch_metadata(config(cat, retries=0))
    assert first.exit_code() == 2 and len(first.errors) == 1
    assert "gave up after 1 tries" in first.errors[0] and "resume from byte 123,456" in first.errors[0]
    second = fetch_metadata(config(cat))
    assert second.errors == [] and (Path(second.dest) / "cc12m" / "b.tsv").read_bytes() == data
    assert files.bytes_served["/b.tsv"] == SIZE
    n_requests = len(files.requests)
    third = fetch_metadata(config(cat))
    assert [r["status"] for r in third.rows] == ["present"] and len(files.requests) == n_requests


def test_corrupt_copy_is_detected_and_fetched_again(files, catalogue, config) -> None:
    data, short = os.urandom(SIZE), os.urandom(5000)
    good = _http(files, "good.json.zip", data, sha256=hashlib.sha256(data).hexdigest())
    sized = _http(files, "sized.json.zip", data, size=SIZE)
    files.serve_once["/good.json.zip"] = bytes(b ^ 1 for b in data)  # same length, other bytes
    files.serve_once["/sized.json.zip"] = short  # a truncated copy, served "complete"
    cat = catalogue(vg=entry("visual-genome", {"kind": "http", "files": [good, sized]}))
    report = fetch_metadata(config(cat))
    assert report.errors == []
    for name in ("good.json.zip", "sized.json.zip"):
        assert (Path(report.dest) / "visual-genome" / name).read_bytes() == data
    assert files.bytes_served["/good.json.zip"] == 2 * SIZE
    assert files.bytes_served["/sized.json.zip"] == 5000 + SIZE


def test_a_copy_that_never_matches_is_one_line_and_leaves_nothing(files, catalogue, config) -> None:
    data = os.urandom(5000)
    spec = _http(files, "x.tar.gz", data, sha256="0" * 64)
    cat = catalogue(sbu=entry("sbu", {"kind": "http", "files": [spec]}))
    report = fetch_metadata(config(cat))
    assert report.exit_code() == 2 and len(report.errors) == 1
    line = report.errors[0]
    assert "\n" not in line and "sbu: sbu/x.tar.gz: sha256" in line and "even after a fresh download" in line
    assert files.bytes_served["/x.tar.gz"] == 10_000
    assert not (Path(report.dest) / "sbu").exists() or not any((Path(report.dest) / "sbu").iterdir())


def test_404_is_one_line_other_files_still_fetched_and_a_mirror_is_used(files, catalogue, config) -> None:
    data = os.urandom(2000)
    gone = {"name": "gone.tsv", "urls": [files.url("/nowhere/gone.tsv")]}
    mirrored = _http(files, "m.tsv", data)
    mirrored["urls"].insert(0, files.url("/old/m.tsv"))
    cat = catalogue(cc3m=entry("cc3m", {"kind": "http", "files": [gone, mirrored]}))
    report = fetch_metadata(config(cat))
    assert len(report.errors) == 1 and report.exit_code() == 2
    line = report.errors[0]
    assert "cc3m/gone.tsv" in line and "HTTP 404" in line and "catalogue.yaml" in line and "\n" not in line
    assert (Path(report.dest) / "cc3m" / "m.tsv").read_bytes() == data
    fetched = json.loads((Path(report.dest) / "fetch-manifest.json").read_text())["files"]
    assert list(fetched) == ["cc3m/m.tsv"] and fetched["cc3m/m.tsv"]["origin"] == files.url("/m.tsv")


def test_changed_file_on_the_server_restarts_instead_of_splicing(files, catalogue, config) -> None:
    old, new = os.urandom(SIZE), os.urandom(SIZE)
    spec = _http(files, "c.tsv", old)
    files.cut_after["/c.tsv"] = 50_000
    cat = catalogue(cc12m=entry("cc12m", {"kind": "http", "files": [spec]}))
    assert fetch_metadata(config(cat, retries=0)).exit_code() == 2
    files.files["/c.tsv"] = new  # a new ETag: If-Range fails, the server answers 200 with all of it
    report = fetch_metadata(config(cat))
    assert report.errors == [] and (Path(report.dest) / "cc12m" / "c.tsv").read_bytes() == new
    last = _gets(files, "/c.tsv")[-1]
    assert last[2] == "bytes=50000-"


def test_dry_run_lists_sizes_and_fetches_nothing(files, catalogue, config, tmp_path) -> None:
    data = os.urandom(777)
    known = _http(files, "k.tsv", data, size=777)
    probed = _http(files, "p.tsv", os.urandom(1234))
    cat = catalogue(wit=entry("wit", {"kind": "http", "files": [known, probed]}))
    report = fetch_metadata(config(cat, dry_run=True))
    assert [(r["file"], r["size"], r["status"]) for r in report.rows] == [
        ("wit/k.tsv", 777, "to fetch"),
        ("wit/p.tsv", 1234, "to fetch"),
    ]
    assert not _gets(files, "/k.tsv") and not _gets(files, "/p.tsv") and not (tmp_path / "dest").exists()


def test_manual_files_are_explained_and_required_ones_fail_the_run(catalogue, config, tmp_path) -> None:
    manual = {
        "kind": "manual",
        "page": "https://example.org/click",
        "instructions": "accept the terms and download both",
        "files": [{"name": "Train.tsv"}, {"name": "Labels.tsv", "size": 3}],
    }
    cat = catalogue(cc3m=entry("cc3m", manual))
    report = fetch_metadata(config(cat))
    assert report.exit_code() == 3 and [j.rel for j in report.manual_missing] == [
        "cc3m/Train.tsv",
        "cc3m/Labels.tsv",
    ]
    folder = tmp_path / "dest" / "cc3m"
    folder.mkdir(parents=True)
    (folder / "Train.tsv").write_text("caption\turl\n")
    (folder / "Labels.tsv").write_text("abcd")  # wrong size: still missing
    report = fetch_metadata(config(cat))
    assert [j.rel for j in report.manual_missing] == ["cc3m/Labels.tsv"] and report.exit_code() == 3
    (folder / "Labels.tsv").write_text("abc")
    report = fetch_metadata(config(cat))
    assert report.exit_code() == 0 and [r["status"] for r in report.rows] == ["present", "present"]
    recorded = json.loads((tmp_path / "dest" / "fetch-manifest.json").read_text())["files"]
    assert recorded["cc3m/Train.tsv"]["note"] == "placed by hand"
    optional = catalogue(cc3m=entry("cc3m", {**manual, "optional": True, "files": [{"name": "Other.tsv"}]}))
    assert fetch_metadata(config(optional)).exit_code() == 0


def test_files_on_disk_are_adopted_by_checksum_and_verify_rehashes(
    files, catalogue, config, tmp_path
) -> None:
    data = os.urandom(20_000)
    spec = _http(files, "v.tsv", data, sha256=hashlib.sha256(data).hexdigest())
    cat = catalogue(wit=entry("wit", {"kind": "http", "files": [spec]}))
    target = tmp_path / "dest" / "wit" / "v.tsv"
    target.parent.mkdir(parents=True)
    target.write_bytes(data)  # already there (copied by hand): checked, recorded, not fetched
    report = fetch_metadata(config(cat))
    assert [r["status"] for r in report.rows] == ["present"] and not _gets(files, "/v.tsv")
    st = target.stat()
    target.write_bytes(bytes(b ^ 1 for b in data))  # silent corruption: same size and mtime
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [r["status"] for r in fetch_metadata(config(cat)).rows] == ["present"]  # trusted
    report = fetch_metadata(config(cat, verify=True))
    assert [r["status"] for r in report.rows] == ["fetched"] and target.read_bytes() == data


def test_rich_progress_draws_bytes_rate_and_eta() -> None:
    from io import StringIO

    from rich.console import Console

    from rs5m.fetch.progress import RichProgress, make_progress

    out = StringIO()
    bar = RichProgress(1000, console=Console(file=out, force_terminal=True, width=120))
    bar.start("wit/a.tsv", 1000, 100)
    bar.advance("wit/a.tsv", 900)
    bar.finish("wit/a.tsv", "1,000 bytes in 0.1 s, checked")
    bar.close()
    text = out.getvalue()
    assert "wit/a.tsv: 1,000 bytes in 0.1 s, checked" in text and "all files" in text and "/s" in text
    assert type(make_progress(10, stream=StringIO())).__name__ == "LogProgress"
