"""The rating API: submit, resume, idempotency, concurrent clients, validation, images, broken marks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from rs5m.core.layout import DataRoot
from rs5m.rating.sampling import SampleSpec
from rs5m.rating.store import RatingStore
from tests.rating.conftest import KEPT, serve_spec

SPEC = SampleSpec("v1", n=6)
GOOD = {"relevance": 4, "hallucination": 5, "fluency": 3}


@pytest.fixture()
def client(store: RatingStore, rating_root: Path) -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    app, items = serve_spec(store, rating_root, SPEC)
    with TestClient(app) as c:
        yield c, items


def rows(store: RatingStore, sql: str, params: list[Any] | None = None) -> list[tuple]:
    return store.call(lambda con: con.execute(sql, params or []).fetchall())


def test_session_pairs_and_images(client: tuple[TestClient, list[dict[str, Any]]]) -> None:
    c, items = client
    assert c.get("/").status_code == 200 and "app.js" in c.get("/").text
    assert c.get("/static/app.js").status_code == 200
    s = c.get("/api/session").json()
    assert s["total"] == 6 and [x["name"] for x in s["rubric"]["scales"]] == [
        "relevance",
        "hallucination",
        "fluency",
    ]
    pair = c.get("/api/pairs/0", params={"rater": "ann"}).json()
    assert pair["uid"] == items[0]["uid"] and pair["rating"] is None
    by_uid = {it["uid"]: it["pos"] for it in items}
    missing = c.get(f"/api/pairs/{by_uid['cc12m-4']}", params={"rater": "ann"}).json()
    assert missing["image_url"] is None and "no image for key 000000004" in missing["image_error"]
    ok = c.get(f"/api/images/{items[by_uid['cc12m-0']]['uid']}")
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/jpeg"
    gone = c.get("/api/images/cc12m-4")
    assert gone.status_code == 404 and "no image" in gone.json()["detail"]
    for bad in ("cc12m-1", "..%2F..%2Fetc%2Fpasswd", "download"):
        assert c.get(f"/api/images/{bad}").status_code == 404
    assert c.get("/api/pairs/6", params={"rater": "ann"}).status_code == 404
    assert c.get("/api/session", headers={"host": "evil.example"}).status_code == 400


def test_submit_resume_and_idempotency(
    store: RatingStore, client: tuple[TestClient, list[dict[str, Any]]]
) -> None:
    c, items = client
    assert c.get("/api/progress", params={"rater": "ann"}).json()["next_pos"] == 0
    for it in items[:2]:
        p = c.post("/api/ratings", json={"rater": "ann", "uid": it["uid"], **GOOD}).json()
    assert (p["rated"], p["next_pos"]) == (2, 2)
    again = {
        "rater": "ann",
        "uid": items[0]["uid"],
        "relevance": 1,
        "hallucination": 2,
        "fluency": 3,
        "comment": "x",
    }
    assert c.post("/api/ratings", json=again).status_code == 200
    got = rows(
        store,
        "SELECT relevance, hallucination, fluency, comment FROM ratings WHERE uid = ?",
        [items[0]["uid"]],
    )
    assert got == [(1, 2, 3, "x")]
    assert rows(store, "SELECT count(*) FROM rating_log WHERE uid = ?", [items[0]["uid"]]) == [(2,)]
    assert c.get("/api/pairs/0", params={"rater": "ann"}).json()["rating"]["relevance"] == 1
    # another rater starts at the beginning; a new app on the same database resumes ann
    assert c.get("/api/progress", params={"rater": "bob"}).json()["next_pos"] == 0
    c.post("/api/skip", json={"rater": "ann", "uid": items[2]["uid"]})
    assert c.get("/api/progress", params={"rater": "ann"}).json()["next_pos"] == 3


def test_resume_after_restart(store: RatingStore, rating_root: Path) -> None:
    app, items = serve_spec(store, rating_root, SPEC)
    with TestClient(app) as c:
        c.post("/api/ratings", json={"rater": "ann", "uid": items[0]["uid"], **GOOD})
    store.close()
    again = RatingStore(DataRoot.of(rating_root).ratings_db, idle_close_s=0.3)
    try:
        app2, items2 = serve_spec(again, rating_root, SPEC)
        assert items2 == items
        with TestClient(app2) as c:
            assert c.get("/api/progress", params={"rater": "ann"}).json() == {
                "rater": "ann", "total": 6, "rated": 1, "broken": 0, "skipped": 0, "next_pos": 1,
            }  # fmt: skip
    finally:
        again.close()


def test_broken_records_the_reason(
    store: RatingStore, client: tuple[TestClient, list[dict[str, Any]]]
) -> None:
    c, _ = client
    p = c.post("/api/broken", json={"rater": "ann", "uid": "cc12m-4", "reason": "image missing"}).json()
    assert p["broken"] == 1 and p["rated"] == 0
    assert rows(store, "SELECT relevance, broken FROM ratings WHERE uid = 'cc12m-4'") == [
        (None, "image missing")
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"relevance": 0},
        {"relevance": 6},
        {"fluency": 4.5},
        {"fluency": "4"},
        {"hallucination": None},
        {"rater": ""},
        {"rater": "   "},
        {"rater": "x" * 65},
        {"rater": "a\nb"},
        {"extra": 1},
        {"comment": "c" * 2001},
    ],
)
def test_server_rejects_bad_answers(
    store: RatingStore, client: tuple[TestClient, list[dict[str, Any]]], change: dict[str, Any]
) -> None:
    c, items = client
    body = {"rater": "ann", "uid": items[0]["uid"], **GOOD, **change}
    assert c.post("/api/ratings", json=body).status_code == 422
    assert rows(store, "SELECT count(*) FROM ratings") == [(0,)]


def test_audit_pairs_hide_the_decision(store: RatingStore, rating_root: Path) -> None:
    app, items = serve_spec(store, rating_root, SampleSpec("v1", audit="dedup", source="cc12m", n=10))
    pos = next(it["pos"] for it in items if it["uid"] == "cc12m-2")
    with TestClient(app) as c:
        pair = c.get(f"/api/pairs/{pos}", params={"rater": "ann"}).json()
    assert pair["decision"] is None and "dup_reason" not in pair["info"] and "keep_dedup" not in pair["info"]
    assert items[pos]["decision"] == "removed" and items[pos]["info"]["dup_reason"] == "near_duplicate"


def test_unknown_uid_and_missing_fields(client: tuple[TestClient, list[dict[str, Any]]]) -> None:
    c, _ = client
    assert c.post("/api/ratings", json={"rater": "ann", "uid": "laion2b-1", **GOOD}).status_code == 404
    assert c.post("/api/ratings", json={"rater": "ann", "uid": "cc12m-0", "relevance": 3}).status_code == 422
    assert c.post("/api/broken", json={"rater": "ann", "uid": "cc12m-0", "reason": ""}).status_code == 422
    assert c.get("/api/progress", params={"rater": ""}).status_code == 422
    assert c.get("/api/progress").status_code == 422


def test_concurrent_clients_lose_nothing(
    store: RatingStore, live_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, items = live_server
    errors: list[str] = []

    def rater(name: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as cl:
            for _ in range(5):
                for it in items:
                    scores = {"relevance": 1 + len(name) % 5, "hallucination": 5, "fluency": 4}
                    r = cl.post("/api/ratings", json={"rater": name, "uid": it["uid"], **scores})
                    if r.status_code != 200:
                        errors.append(r.text)

    threads = [threading.Thread(target=rater, args=(n,)) for n in ("ann", "bob", "carla", "dmitri")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rows(store, "SELECT count(*), count(DISTINCT rater), count(DISTINCT uid) FROM ratings") == [
        (24, 4, 6)
    ]
    assert rows(store, "SELECT count(*) FROM rating_log") == [(120,)]
    assert {r[0] for r in rows(store, "SELECT uid FROM ratings")} == KEPT


def test_database_released_when_idle(
    store: RatingStore, client: tuple[TestClient, list[dict[str, Any]]]
) -> None:
    import time

    c, items = client
    c.post("/api/ratings", json={"rater": "ann", "uid": items[0]["uid"], **GOOD})
    time.sleep(0.8)
    with duckdb.connect(str(store.db_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ratings").fetchone() == (1,)
    assert c.post("/api/ratings", json={"rater": "bob", "uid": items[0]["uid"], **GOOD}).status_code == 200
