"""The packaged catalogue, its validation, the fetch config and the ``rs5m fetch-metadata`` CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cli.main import main
from rs5m.config.fetch import FetchConfig
from rs5m.core.schema import Source
from rs5m.fetch.catalogue import HubPart, load_catalogue
from tests.fetch.conftest import entry

# the folders deployments/full.yaml reads under pub11-metadata/ (agreed with the full.yaml rewrite)
FOLDERS = {
    "laion2b": "laion2b-en",
    "coyo700m": "coyo-700m",
    "laioncoco": "laion-coco",
    "laion400m": "laion400m-meta",
    "wit": "wit",
    "yfcc15m": "yfcc100m",
    "cc12m": "cc12m",
    "redcaps": "redcaps",
    "cc3m": "cc3m",
    "sbu": "sbu",
    "vg": "visual-genome",
}


def test_packaged_catalogue_covers_every_source_in_the_agreed_folders() -> None:
    cat = load_catalogue()
    assert list(cat.sources) == [s.value for s in Source]
    assert {k: e.folder for k, e in cat.sources.items()} == FOLDERS
    yfcc = {f.name: f for part in cat.entry("yfcc15m").parts for f in getattr(part, "files", [])}
    assert yfcc["yfcc100m_dataset.sql"].size == 65_644_027_904
    assert yfcc["yfcc100m_dataset.sql"].md5 == "b8e3fa7f40ee2f309d63b8de8d755495"
    assert "yfcc100m_subset_data.tsv.bz2" in yfcc
    hub_parts = [p for e in cat.sources.values() for p in e.parts if isinstance(p, HubPart)]
    gated = {p.repo_id for p in hub_parts if p.gated}
    assert gated == {"laion/relaion2B-en-research-safe", "laion/relaion-coco", "laion/relaion400m"}
    assert all(p.terms_url and p.terms_url.endswith(p.repo_id) for p in hub_parts if p.gated)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sources": {"laion5b": None}}, "unknown source(s) ['laion5b']"),
        ({"part": {"kind": "http", "files": [{"name": "../x", "urls": ["https://a/x"]}]}}, "relative path"),
        ({"part": {"kind": "http", "files": [{"name": "x", "urls": ["https://a/x"], "md5": "XYZ"}]}}, "md5"),
        (
            {"part": {"kind": "hf_repo", "repo_id": "a/b", "allow_patterns": ["*"], "gated": True}},
            "terms_url",
        ),
        ({"part": {"kind": "ftp", "files": []}}, "kind"),
    ],
)
def test_a_bad_catalogue_is_one_line_naming_the_file(tmp_path: Path, change: dict, message: str) -> None:
    good = {"kind": "http", "files": [{"name": "x", "urls": ["https://a/x"]}]}
    sources = {"wit": entry("wit", change.get("part", good))}
    if "sources" in change:
        sources.update({k: entry("other", good) for k in change["sources"]})
    path = tmp_path / "cat.yaml"
    path.write_text(yaml.safe_dump({"checked": "t", "sources": sources}))
    with pytest.raises(ValueError) as err:
        load_catalogue(path)
    assert str(path) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_config_rejects_unknown_sources_and_orders_the_selection() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        FetchConfig(dest="d", sources=["laion5b"])
    assert FetchConfig(dest="d", sources=["vg", "wit", "vg"]).selected() == ["wit", "vg"]
    assert FetchConfig(dest="d").selected(["sbu", "cc3m"]) == ["cc3m", "sbu"]


def test_cli_dry_run_prints_sizes_and_real_run_reports_failures_as_lines(
    files, catalogue, tmp_path: Path, capsys
) -> None:
    files.files["/w.tsv.gz"] = os.urandom(2_500_000)
    cat = catalogue(
        wit=entry("wit", {"kind": "http", "files": [{"name": "w.tsv.gz", "urls": [files.url("/w.tsv.gz")]}]}),
        sbu=entry("sbu", {"kind": "http", "files": [{"name": "s.tar.gz", "urls": [files.url("/gone")]}]}),
    )
    base = ["fetch-metadata", "--dest", str(tmp_path / "d"), "--catalogue", str(cat)]
    assert main([*base, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "wit/w.tsv.gz" in out and "2.5 MB" in out and "to fetch" in out and "would fetch 2 file(s)" in out
    assert main([*base, "--sources", "wit,sbu", "--retries", "0"]) == 2
    captured = capsys.readouterr()
    assert "fetched 1 file(s) (2.5 MB)" in captured.out and "1 failed" in captured.out
    [err] = captured.err.strip().splitlines()
    assert err.startswith("rs5m fetch-metadata: error: sbu: sbu/s.tar.gz:") and "HTTP 404" in err
    assert main([*base, "--sources", "wit,laion5b"]) == 2
    assert "unknown source(s) ['laion5b']" in capsys.readouterr().err
