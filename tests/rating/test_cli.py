"""``rs5m rate`` through the real CLI entry point: serving (uvicorn stubbed), report, bad input."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cli import main as cli
from rs5m.core.layout import DataRoot
from rs5m.rating.store import RatingStore, save_rating
from tests.rating.conftest import free_port


@pytest.fixture(autouse=True)
def _rate_command(monkeypatch: pytest.MonkeyPatch) -> None:
    if "rate" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "rate"])


def test_rate_serves_the_sample(
    rating_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    port = free_port()

    def fake_run(app: Any, host: str, port: int, log_level: str) -> None:
        seen.update(host=host, port=port)
        with TestClient(app) as c:
            uid = c.get("/api/pairs/0", params={"rater": "ann"}).json()["uid"]
            body = {"rater": "ann", "uid": uid, "relevance": 5, "hallucination": 4, "fluency": 5}
            seen["status"] = c.post("/api/ratings", json=body).status_code

    monkeypatch.setattr(uvicorn, "run", fake_run)
    args = [
        "rate",
        "--root",
        str(rating_root),
        "--version",
        "v1",
        "--sample",
        "4",
        "--seed",
        "2",
        "--port",
        str(port),
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "version v1: 4 pairs, pub11, all sources, kept pairs, seed 2" in out
    assert f"http://127.0.0.1:{port}/" in out
    assert seen == {"host": "127.0.0.1", "port": port, "status": 200}
    assert cli.main([*args, "--sample", "50"]) == 0
    assert "(only 6 available)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--version", "nope"], "unknown version 'nope'"),
        (
            ["--version", "v1", "--source", "vg"],
            "unknown source 'vg' for pub11 in version v1 (known: cc12m, laion2b)",
        ),
        (["--version", "v1", "--subset", "rs3", "--audit", "dedup"], "only for the pub11 subset"),
        (["--version", "v1", "--sample", "0"], "at least 1"),
        (["--version", "v1", "--port", "80"], "outside 1024..65535"),
    ],
)
def test_rate_bad_input(
    rating_root: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    port = [] if "--port" in extra else ["--port", str(free_port())]
    assert cli.main(["rate", "--root", str(rating_root), *port, *extra]) == 2
    assert message in capsys.readouterr().err


def test_rate_empty_sample_and_busy_port(rating_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (rating_root / "versions" / "v2").mkdir()
    assert cli.main(["rate", "--root", str(rating_root), "--version", "v2", "--port", str(free_port())]) == 2
    assert "no keyword or download output" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["rate", "--root", str(rating_root), "--version", "v1", "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_rate_report_prints_and_saves(rating_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["rate", "--root", str(rating_root), "--version", "v1"]
    assert cli.main([*base, "--report"]) == 2
    assert "no ratings for version 'v1' yet" in capsys.readouterr().err
    from rs5m.rating import sessions
    from rs5m.rating.sampling import SampleSpec, draw_sample

    store = RatingStore(DataRoot.of(rating_root).ratings_db)
    spec = SampleSpec("v1", n=6)
    store.call(sessions.ensure_sample, spec, lambda: draw_sample(rating_root / "versions" / "v1", spec))
    for rater, score in (("ann", 5), ("bob", 4)):
        for uid in ("cc12m-0", "laion2b-0"):
            store.call(save_rating, "v1", uid, rater, {"relevance": score, "hallucination": 5, "fluency": 4})
    store.close()
    assert cli.main([*base, "--report"]) == 0
    out = capsys.readouterr().out
    assert "4 ratings of 2 pairs by 2 rater(s)" in out
    assert "Relevance & Detail" in out and "4.50 ± 0.58" in out and "Inter-rater agreement" in out
    saved = rating_root / "ratings" / "v1"
    assert (saved / "report.txt").read_text().startswith("version v1")
    assert json.loads((saved / "report.json").read_text())["ratings"] == 4
    assert len((saved / "ratings.csv").read_text().splitlines()) == 5
    assert cli.main([*base, "--report", "--format", "csv", "--out", str(rating_root / "o")]) == 0
    assert "Subset,Source,Pairs" in capsys.readouterr().out
