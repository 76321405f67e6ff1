"""The ``fetch-pub11-metadata`` flow and its deployment entry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from rs5m.config.fetch import FetchConfig
from tests.fetch.conftest import entry
from tests.http_stub import FileServer, serving

ROOT = Path(__file__).resolve().parents[2]


def test_deployment_parameters_are_a_valid_config_aimed_where_full_yaml_reads() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    [dep] = [d for d in spec["deployments"] if d["entrypoint"].endswith(":fetch_pub11_metadata")]
    cfg = FetchConfig.model_validate(dep["parameters"])
    full = yaml.safe_load((ROOT / "deployments" / "full.yaml").read_text())
    globs = [g for s in full["sources"] for g in s["files"]]
    assert all(g.startswith(f"../{cfg.dest}/") for g in globs)  # full.yaml sits in deployments/


@pytest.mark.slow
def test_flow_fetches_publishes_and_fails_on_a_missing_file(prefect_harness, tmp_path: Path) -> None:
    from flows.fetch_metadata import fetch_pub11_metadata

    with serving(FileServer()) as files:
        files.files["/w.tsv.gz"] = os.urandom(50_000)
        http = {"kind": "http", "files": [{"name": "w.tsv.gz", "urls": [files.url("/w.tsv.gz")]}]}
        gone = {"kind": "http", "files": [{"name": "s.tar.gz", "urls": [files.url("/gone")]}]}
        cat = tmp_path / "cat.yaml"
        cat.write_text(yaml.safe_dump({"checked": "t", "sources": {"wit": entry("wit", http)}}))
        cfg = {"dest": str(tmp_path / "d"), "catalogue": str(cat), "retry_wait_s": 0}
        assert fetch_pub11_metadata(**cfg) == {"files": 1, "bytes_fetched": 50_000}
        manifest = json.loads((tmp_path / "d" / "fetch-manifest.json").read_text())
        assert list(manifest["files"]) == ["wit/w.tsv.gz"]
        cat.write_text(yaml.safe_dump({"checked": "t", "sources": {"sbu": entry("sbu", gone)}}))
        with pytest.raises(RuntimeError, match="1 problem.*sbu/s.tar.gz.*HTTP 404"):
            fetch_pub11_metadata(**cfg)
