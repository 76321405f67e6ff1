"""Resumable HTTP downloads: ``<file>.part`` grows with Range requests until size and checksums match.

A dropped connection is resumed from the bytes on disk (``Range: bytes=N-``, guarded by ``If-Range`` with
the ETag or Last-Modified the server gave), up to ``retries`` times; a server that ignores the range gets
a fresh transfer. A finished file that fails its size or checksum is deleted and fetched once more from
scratch; a second failure is one line naming the file and what to do.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs5m.core.io import write_json
from rs5m.fetch.plan import FetchError, FileJob
from rs5m.fetch.progress import Progress
from rs5m.fetch.verify import Hashers, mismatch

USER_AGENT = "rs5m-fetch-metadata/1 (+https://github.com/om-ai-lab/RS5M)"
_TRANSIENT = (http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout)


@dataclass(frozen=True)
class HttpOptions:
    """Network knobs (from ``FetchConfig``)."""

    retries: int = 5
    retry_wait_s: float = 2.0
    timeout_s: float = 60.0
    chunk_bytes: int = 1 << 20


class _Dead(Exception):
    """This URL will not serve the file (a 4xx other than 408/429, or refused): try the next one."""

    def __init__(self, message: str, moved: bool) -> None:
        super().__init__(message)
        self.moved = moved


def probe_size(url: str, timeout_s: float) -> int | None:
    """``Content-Length`` of a HEAD request, or ``None`` when the server does not say or cannot be reached."""
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            value = resp.headers.get("Content-Length")
    except (urllib.error.URLError, *_TRANSIENT):
        return None
    return int(value) if value and value.isdigit() else None


def _total(resp: Any, have: int) -> int | None:
    match = re.match(r"bytes \d+-\d+/(\d+)", resp.headers.get("Content-Range") or "")
    if match:
        return int(match.group(1))
    length = resp.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


class _Transfer:
    """One URL into one ``.part`` file, resumed across dropped connections."""

    def __init__(self, job: FileJob, url: str, part: Path, opts: HttpOptions, progress: Progress) -> None:
        self.job, self.url, self.part, self.opts, self.progress = job, url, part, opts, progress
        self.sidecar = part.with_name(part.name + ".json")
        self.state = self._load_state()
        self.hashers = Hashers(want_md5=job.checksums.get("md5") is not None)
        self.have = part.stat().st_size if part.exists() else 0
        if self.have:
            self.hashers.feed_file(part, self.have)
        self.started = False

    def _load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        if state.get("url") != self.url:  # a .part from another URL (or none): start over
            self.part.unlink(missing_ok=True)
            state = {"url": self.url}
        return state

    def _restart(self) -> None:
        self.progress.advance(self.job.rel, -self.have)
        self.part.unlink(missing_ok=True)
        self.have = 0
        self.hashers = Hashers(want_md5=self.job.checksums.get("md5") is not None)

    def _request(self) -> Any:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if self.have:
            headers["Range"] = f"bytes={self.have}-"
            validator = self.state.get("etag") or self.state.get("last_modified")
            if validator:
                headers["If-Range"] = validator
        req = urllib.request.Request(self.url, headers=headers)
        return urllib.request.urlopen(req, timeout=self.opts.timeout_s)

    def _receive(self, resp: Any) -> None:
        if self.have and resp.status != 206:  # range ignored or the file changed (If-Range failed)
            self._restart()
        self.state.update(
            etag=resp.headers.get("ETag"),
            last_modified=resp.headers.get("Last-Modified"),
            total=_total(resp, self.have),
        )
        write_json(self.sidecar, self.state)
        if not self.started:
            self.progress.start(self.job.rel, self.state["total"], self.have)
            self.started = True
        with open(self.part, "ab") as fh:
            while chunk := resp.read(self.opts.chunk_bytes):
                fh.write(chunk)
                self.hashers.update(chunk)
                self.have += len(chunk)
                self.progress.advance(self.job.rel, len(chunk))
        total = self.state["total"]
        if total is not None and self.have < total:
            raise ConnectionResetError(f"connection closed at byte {self.have:,} of {total:,}")

    def _attempt(self) -> bool:
        """One request; True when the file is complete on disk."""
        try:
            with self._request() as resp:
                self._receive(resp)
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and self.have and self.have == self.state.get("total"):
                return True  # everything was already there
            if exc.code == 416:
                self._restart()
                return False
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise _Dead(f"HTTP {exc.code} {exc.reason}", moved=True) from exc
            raise ConnectionError(f"HTTP {exc.code} {exc.reason}") from exc

    def run(self) -> dict[str, Any]:
        """Fetch until complete; return ``size``, digests and the validator (or raise ``_Dead``)."""
        failures = 0
        while True:
            try:
                if self._attempt():
                    break
            except (urllib.error.URLError, *_TRANSIENT) as exc:
                if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, ConnectionRefusedError):
                    raise _Dead(f"connection refused ({exc.reason})", moved=False) from exc
                failures += 1
                if failures > self.opts.retries:
                    raise FetchError(
                        f"{self.job.source}: {self.job.rel}: {self.url}: gave up after {failures} tries "
                        f"({_reason(exc)}); rerun later to resume from byte {self.have:,}"
                    ) from exc
                time.sleep(self.opts.retry_wait_s * failures)
        return {"size": self.have, **self.hashers.digests(), "revision": self.state.get("etag")}


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def _download(job: FileJob, part: Path, opts: HttpOptions, progress: Progress) -> tuple[str, dict[str, Any]]:
    dead: list[str] = []
    moved = True
    for url in job.urls:
        try:
            return url, _Transfer(job, url, part, opts, progress).run()
        except _Dead as exc:
            dead.append(f"{url}: {exc}")
            moved = moved and exc.moved
    todo = (
        "the file moved: fix its URL in rs5m/fetch/catalogue.yaml, or download it by hand "
        f"(see {job.homepage}) to <dest>/{job.rel}"
        if moved
        else "check the network (or proxy) and rerun"
    )
    raise FetchError(f"{job.source}: {job.rel}: {'; '.join(dead)}: {todo}")


def fetch_http(job: FileJob, dest: Path, opts: HttpOptions, progress: Progress) -> dict[str, Any]:
    """Fetch ``job`` to ``dest/job.rel`` (resuming a ``.part``); return its manifest entry fields.

    The file is checked against the job's size and published checksums; on a mismatch it is deleted and
    fetched once more from scratch. Raises ``FetchError`` (one line) when that fails too, or when no URL
    serves the file.
    """
    target = dest / job.rel
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    problem = ""
    for fresh in (False, True):
        url, got = _download(job, part, opts, progress)
        problem = mismatch(got["size"], got, job.expected()) or ""
        if not problem:
            os.replace(part, target)
            part.with_name(part.name + ".json").unlink(missing_ok=True)
            return {**got, "source": job.source, "origin": url, "kind": "http"}
        part.unlink(missing_ok=True)
        part.with_name(part.name + ".json").unlink(missing_ok=True)
        progress.advance(job.rel, -got["size"])
        if fresh:
            break
    raise FetchError(
        f"{job.source}: {job.rel}: {problem} even after a fresh download; the server's copy differs from "
        "rs5m/fetch/catalogue.yaml: check the source's page and update the entry"
    )
