"""``fetch_metadata(cfg)``: plan every file of the selected sources, skip what is there, fetch the rest.

Files are fetched in parallel (``cfg.workers`` at once), each recorded in ``<dest>/fetch-manifest.json``
as soon as it is complete and checked. A failure is one line in the report; the other files go on. When
a hub part fails for a reason that applies to all its files (gated, missing, unreachable), its remaining
files are not tried again, so the report says it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rs5m.config.fetch import FetchConfig
from rs5m.fetch.catalogue import HubPart, ManualPart, load_catalogue
from rs5m.fetch.http import HttpOptions, fetch_http, probe_size
from rs5m.fetch.manifest import Manifest
from rs5m.fetch.plan import FetchError, FileJob, HubLister, plan_jobs
from rs5m.fetch.progress import LogProgress, Progress
from rs5m.fetch.verify import hash_file, mismatch

log = logging.getLogger(__name__)
ProgressFactory = Callable[[int], Progress]


@dataclass
class FetchReport:
    """What a fetch found, did and could not do; ``rows`` is one line per file for the CLI table."""

    dest: Path
    dry_run: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    manual_missing: list[FileJob] = field(default_factory=list)
    bytes_fetched: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many files ended with ``status``."""
        return sum(1 for r in self.rows if r["status"] == status)

    def required_manual_missing(self) -> list[FileJob]:
        """Manual files that are absent and not marked optional."""
        return [j for j in self.manual_missing if isinstance(j.part, ManualPart) and not j.part.optional]

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest: rows, errors, files to place by hand (with instructions), bytes, seconds."""
        manual = [
            {
                "file": str(self.dest / j.rel),
                "page": j.part.page,
                "instructions": j.part.instructions,
                "optional": j.part.optional,
            }
            for j in self.manual_missing
            if isinstance(j.part, ManualPart)
        ]
        return {
            "rows": self.rows,
            "errors": self.errors,
            "manual": manual,
            "bytes_fetched": self.bytes_fetched,
            "seconds": round(self.seconds, 3),
        }

    def exit_code(self) -> int:
        """0 when all asked for is there, 2 when a file failed, 3 when required manual files are absent."""
        if self.errors:
            return 2
        return 3 if self.required_manual_missing() else 0


def _row(job: FileJob, status: str, size: int | None) -> dict[str, Any]:
    return {"source": job.source, "file": job.rel, "size": size, "status": status, "from": job.origin()}


class _Runner:
    """State of one fetch: the manifest, the report and the hub parts already known to fail."""

    def __init__(self, cfg: FetchConfig, report: FetchReport) -> None:
        self.cfg, self.report = cfg, report
        self.dest = Path(cfg.dest)
        self.manifest = Manifest(self.dest)
        self.opts = HttpOptions(cfg.retries, cfg.retry_wait_s, cfg.timeout_s, cfg.chunk_bytes)
        self.lock = threading.Lock()
        self.dead_parts: set[int] = set()

    def _adopt(self, job: FileJob) -> bool:
        """A file already at its place but not in the manifest (or ``verify``): check it and record it."""
        path = self.dest / job.rel
        expected = job.expected()
        if job.kind == "manual" or not any(v is not None for v in expected.values()):
            digests = hash_file(path, {})  # nothing published to check against: trust what is there
        else:
            digests = hash_file(path, job.checksums)
            if mismatch(path.stat().st_size, digests, expected):
                return False
        note = "placed by hand" if job.kind == "manual" else "found on disk"
        self.manifest.record(
            job.rel,
            {
                **digests,
                "source": job.source,
                "origin": job.origin(),
                "revision": job.revision,
                "kind": job.kind,
                "note": note,
            },
        )
        return True

    def status(self, job: FileJob) -> str:
        """``present``, ``fetch`` or (manual files) ``missing``; records adopted files unless a dry run."""
        path = self.dest / job.rel
        if not self.cfg.verify and self.manifest.unchanged(job.rel, job.expected()):
            return "present"
        if not path.is_file():
            return "missing" if job.kind == "manual" else "fetch"
        if job.kind == "manual" and job.size is not None and path.stat().st_size != job.size:
            return "missing"
        if self.cfg.dry_run:
            return "present" if job.kind == "manual" else "on disk, unchecked"
        return "present" if self._adopt(job) else ("missing" if job.kind == "manual" else "fetch")

    def fetch(self, job: FileJob, progress: Progress) -> None:
        """Fetch one file, record it, report success or the one-line failure."""
        key = id(job.part)
        if key in self.dead_parts:
            return
        start = time.perf_counter()
        try:
            if isinstance(job.part, HubPart):
                from rs5m.fetch.hub import fetch_hub  # huggingface_hub is imported only when needed

                entry = fetch_hub(job, self.dest, progress)
            else:
                entry = fetch_http(job, self.dest, self.opts, progress)
        except FetchError as exc:
            with self.lock:
                self.report.errors.append(str(exc))
                if exc.whole_part:
                    self.dead_parts.add(key)
            progress.finish(job.rel, "FAILED")
            return
        recorded = self.manifest.record(job.rel, entry)
        seconds = time.perf_counter() - start
        with self.lock:
            self.report.bytes_fetched += recorded["size"]
            self.report.rows.append(_row(job, "fetched", recorded["size"]))
        progress.finish(job.rel, f"{recorded['size']:,} bytes in {seconds:.1f} s, checked")


def _lister() -> HubLister:
    from rs5m.fetch.hub import list_hub_files

    return list_hub_files


def fetch_jobs(
    cfg: FetchConfig, jobs: list[FileJob], progress_factory: ProgressFactory | None = None
) -> FetchReport:
    """Bring every file of ``jobs`` to ``cfg.dest``: skip what the manifest (or a check) shows is there.

    Failures are one-line entries of ``report.errors``; manual files that are absent are listed in
    ``report.manual_missing``. With ``cfg.dry_run`` nothing is written and sizes are probed instead.
    """
    start = time.perf_counter()
    report = FetchReport(Path(cfg.dest), cfg.dry_run)
    runner = _Runner(cfg, report)
    todo: list[FileJob] = []
    for job in jobs:
        status = runner.status(job)
        if status == "fetch":
            todo.append(job)
            continue
        if status == "missing":
            report.manual_missing.append(job)
            if isinstance(job.part, ManualPart) and job.part.optional:
                status = "missing (optional)"
        report.rows.append(_row(job, status, job.size))
    if cfg.dry_run:
        for job in todo:
            size = job.size
            if size is None and job.urls:
                size = probe_size(job.urls[0], cfg.timeout_s)
            report.rows.append(_row(job, "to fetch", size))
    elif todo:
        _fetch_all(runner, todo, progress_factory)
    order = {job.rel: i for i, job in enumerate(jobs)}
    report.rows.sort(key=lambda r: order.get(r["file"], len(order)))
    report.seconds = time.perf_counter() - start
    return report


def _fetch_all(runner: _Runner, todo: list[FileJob], progress_factory: ProgressFactory | None) -> None:
    progress = (progress_factory or (lambda total: LogProgress()))(sum(j.size or 0 for j in todo))
    try:
        with ThreadPoolExecutor(max_workers=runner.cfg.workers, thread_name_prefix="fetch") as pool:
            list(pool.map(lambda j: runner.fetch(j, progress), todo))
    finally:
        progress.close()
    if any(isinstance(j.part, HubPart) for j in todo):
        from rs5m.fetch.hub import prune_stripped

        prune_stripped(runner.dest, todo)


def fetch_metadata(
    cfg: FetchConfig, progress_factory: ProgressFactory | None = None, lister: HubLister | None = None
) -> FetchReport:
    """Fetch (or with ``cfg.dry_run`` list) every file of ``cfg``'s sources into ``cfg.dest``.

    Never raises for a single file or source: failures are one-line entries of ``report.errors``.
    Raises ``ValueError``/``FileNotFoundError`` for a bad catalogue or an unreadable manifest.
    """
    start = time.perf_counter()
    catalogue = load_catalogue(cfg.catalogue)
    jobs, errors = plan_jobs(catalogue, cfg.selected(catalogue.sources), lister or _lister())
    report = fetch_jobs(cfg, jobs, progress_factory)
    report.errors[:0] = errors
    report.seconds = time.perf_counter() - start
    return report
