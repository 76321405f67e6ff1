"""Ratings in their own DuckDB file (the data root's ``ratings.duckdb``, not the lineage store), one writer.

Tables (created on first use):
- ``rating_samples(sample_id, version, subset, source, audit, seed, n_requested, n_items, created_at)``
- ``rating_sample_items(sample_id, pos, version, uid, subset, source, stage, decision, caption, info,
  image_kind, image_ref, image_key)``: the drawn pairs, so a resumed session shows the same ones.
- ``ratings(version, uid, rater, relevance, hallucination, fluency, comment, broken, rated_at)``: one
  row per (version, uid, rater); a new answer replaces the old one. ``broken`` holds the reason
  when the rater marked the pair broken (the scores are then NULL).
- ``rating_log``: every submit, skip and broken mark, append-only (the history behind ``ratings``).

Concurrency: ``RatingStore`` owns the only connection, in one worker thread; every read and write
is a function queued to that thread, so concurrent requests are serialised, never lost. The
connection is closed after ``idle_close_s`` (half a second) without work, so ``rs5m rate --report`` in
another process gets the file between a rater's clicks; opening retries while another process holds it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from rs5m.lineage import store as lineage

T = TypeVar("T")

RATING_DDL = """
CREATE TABLE IF NOT EXISTS rating_samples (sample_id VARCHAR PRIMARY KEY, version VARCHAR, subset VARCHAR,
    source VARCHAR, audit VARCHAR, seed BIGINT, n_requested INTEGER, n_items INTEGER, created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS rating_sample_items (sample_id VARCHAR, pos INTEGER, version VARCHAR,
    uid VARCHAR, subset VARCHAR, source VARCHAR, stage VARCHAR, decision VARCHAR, caption VARCHAR,
    info VARCHAR, image_kind VARCHAR, image_ref VARCHAR, image_key VARCHAR, PRIMARY KEY (sample_id, pos));
CREATE TABLE IF NOT EXISTS ratings (version VARCHAR, uid VARCHAR, rater VARCHAR,
    relevance TINYINT CHECK (relevance BETWEEN 1 AND 5),
    hallucination TINYINT CHECK (hallucination BETWEEN 1 AND 5),
    fluency TINYINT CHECK (fluency BETWEEN 1 AND 5),
    comment VARCHAR, broken VARCHAR, rated_at TIMESTAMP, PRIMARY KEY (version, uid, rater));
CREATE TABLE IF NOT EXISTS rating_log (version VARCHAR, uid VARCHAR, rater VARCHAR, action VARCHAR,
    relevance TINYINT, hallucination TINYINT, fluency TINYINT, comment VARCHAR, broken VARCHAR,
    logged_at TIMESTAMP);
"""


class StoreBusy(RuntimeError):
    """Another process holds the ratings database; try again when it is done."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def open_db(db_path: Path, lock_wait_s: float = 10.0) -> duckdb.DuckDBPyConnection:
    """Open the ratings DB read-write with its tables; ``StoreBusy`` after ``lock_wait_s`` of locks."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = lineage.open_waiting(db_path, read_only=False, wait_s=lock_wait_s)
    except lineage.LineageBusy as exc:
        raise StoreBusy(
            f"the ratings database {db_path} is locked by another process; try again when it is done"
        ) from exc
    try:
        con.execute(RATING_DDL)
    except BaseException:
        con.close()
        raise
    return con


class RatingStore:
    """One worker thread that owns the DB connection; callers queue ``fn(con, *args)``."""

    def __init__(self, db_path: str | Path, idle_close_s: float = 0.5, lock_wait_s: float = 10.0) -> None:
        self.db_path = Path(db_path)
        self._idle = idle_close_s
        self._lock_wait = lock_wait_s
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="rating-db-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Queue ``fn(con, *args)`` for the worker; the future holds its result or exception."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        if not self._thread.is_alive():
            raise RuntimeError("the rating store is closed")
        self._queue.put((fn, args, fut))
        return fut

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(con, *args)`` on the worker and wait for it."""
        return self.submit(fn, *args).result()

    async def acall(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(con, *args)`` on the worker without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self) -> None:
        """Finish queued work, close the connection and stop the worker."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _loop(self) -> None:
        con: duckdb.DuckDBPyConnection | None = None
        while True:
            try:
                job = self._queue.get(timeout=self._idle)
            except queue.Empty:
                if con is not None:
                    con.close()
                    con = None
                continue
            if job is None:
                break
            fn, args, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                con = con or open_db(self.db_path, self._lock_wait)
                fut.set_result(fn(con, *args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                fut.set_exception(exc)
        if con is not None:
            con.close()


def _transaction(con: duckdb.DuckDBPyConnection, statements: list[tuple[str, list[Any]]]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for sql, params in statements:
            con.execute(sql, params)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def save_rating(
    con: duckdb.DuckDBPyConnection,
    version: str,
    uid: str,
    rater: str,
    scores: dict[str, int] | None,
    comment: str | None = None,
    broken: str | None = None,
) -> None:
    """Record one answer: upsert ``ratings`` (the last answer wins) and append to ``rating_log``.

    ``scores`` maps relevance/hallucination/fluency to 1..5; it is ``None`` for a broken mark.
    """
    vals = (
        [None, None, None]
        if scores is None
        else [scores[k] for k in ("relevance", "hallucination", "fluency")]
    )
    now = _now()
    _transaction(
        con,
        [
            (
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (version, uid, rater) "
                "DO UPDATE SET relevance = excluded.relevance, hallucination = excluded.hallucination, "
                "fluency = excluded.fluency, comment = excluded.comment, broken = excluded.broken, "
                "rated_at = excluded.rated_at",
                [version, uid, rater, *vals, comment, broken, now],
            ),
            (
                "INSERT INTO rating_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [version, uid, rater, "broken" if broken else "rate", *vals, comment, broken, now],
            ),
        ],
    )


def log_skip(con: duckdb.DuckDBPyConnection, version: str, uid: str, rater: str) -> None:
    """Record that ``rater`` skipped ``uid`` (it comes back after the unseen pairs)."""
    con.execute(
        "INSERT INTO rating_log (version, uid, rater, action, logged_at) VALUES (?, ?, ?, 'skip', ?)",
        [version, uid, rater, _now()],
    )


def get_rating(con: duckdb.DuckDBPyConnection, version: str, uid: str, rater: str) -> dict[str, Any] | None:
    """The rater's current answer for a pair, or ``None``."""
    cur = con.execute(
        "SELECT relevance, hallucination, fluency, comment, broken, rated_at FROM ratings "
        "WHERE version = ? AND uid = ? AND rater = ?",
        [version, uid, rater],
    )
    row = cur.fetchone()
    return None if row is None else dict(zip([d[0] for d in cur.description], row, strict=True))
