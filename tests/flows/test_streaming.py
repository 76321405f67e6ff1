"""Streamed stages: a batch's scoring starts as soon as its download and validity end, while other
partitions still download (the timing records' start/end are the timeline). Finishing a score before the
last download depends on the model's load time, which no test on a shared machine can bound; starting one
does not."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml

from rs5m.core.layout import DataRoot
from rs5m.pipeline.timing import timeline
from rs5m.sample import write_world
from rs5m.sample.server import ROUTES_FILE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(900)
def test_scores_are_written_before_the_last_download_ends(tmp_path: Path, prefect_harness: None) -> None:
    from flows.build_rs5m import build_rs5m

    world = tmp_path / "world"
    write_world(world, seed=0, port=_free_port())
    cfg = yaml.safe_load((world / "build.yaml").read_text())
    cfg["sources"] = [s for s in cfg["sources"] if s["name"] in ("laion2b", "coyo700m", "cc12m", "cc3m")]
    cfg["dask"] = {"n_workers": 2, "threads_per_worker": 1, "processes": False, "partitions_per_task": 1}
    cfg.pop("rs3", None)
    (world / "stream.yaml").write_text(yaml.safe_dump(cfg))
    # every laion2b image answers after 1 s (under the download timeout): that partition downloads slowly
    routes_file = world / "images" / ROUTES_FILE
    routes = json.loads(routes_file.read_text()) if routes_file.exists() else {}
    for img in (world / "images" / "laion2b").iterdir():
        routes.setdefault(f"/laion2b/{img.name}", {"sleep": 1.0})
    routes_file.write_text(json.dumps(routes))

    build_rs5m(config=str(world / "stream.yaml"), root=str(tmp_path / "data"), version="s1")

    events = timeline(DataRoot.of(tmp_path / "data").version("s1"))
    downloads = [e for e in events if e["stage"] == "download"]
    scores = [e for e in events if e["stage"] == "outlier_score"]
    slow = next(e for e in downloads if e["source"] == "laion2b")
    assert len(downloads) == len(scores) == 4 and slow["wall_s"] > 2
    first_score = min(s["start"] for s in scores)
    assert first_score < max(d["end"] for d in downloads), events  # scoring while another partition downloads
