"""The fetch plan: one ``FileJob`` per file of the selected sources, with what is known beforehand.

Hub parts are listed at a pinned commit (their sizes and LFS sha256 come from the listing); HTTP files
carry the catalogue's size and checksums; manual files carry the instructions to show the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rs5m.fetch.catalogue import Catalogue, HttpPart, HubPart, ManualPart, SourceEntry


class FetchError(RuntimeError):
    """A fetch that cannot go on; the message is one line naming the file or repo and what to do.

    ``whole_part`` marks a cause shared by every file of the same catalogue part (a gated or missing
    repo, an unreachable hub): its other files are then not tried, and the error is reported once.
    """

    def __init__(self, message: str, whole_part: bool = False) -> None:
        super().__init__(message)
        self.whole_part = whole_part


@dataclass
class FileJob:
    """One file to have at ``<dest>/<rel>``."""

    source: str
    kind: Literal["hf_repo", "http", "manual"]
    rel: str
    size: int | None = None
    checksums: dict[str, str | None] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    repo_path: str | None = None
    revision: str | None = None
    part: HubPart | HttpPart | ManualPart | None = None
    homepage: str = ""

    def expected(self) -> dict[str, Any]:
        """Size and checksums known before fetching (``None`` = unknown)."""
        return {"size": self.size, **self.checksums}

    def origin(self) -> str:
        """Where the file comes from: the first URL, or ``hf://<type>s/<repo>/<path>``."""
        if isinstance(self.part, HubPart):
            return f"hf://{self.part.repo_type}s/{self.part.repo_id}/{self.repo_path}"
        return self.urls[0] if self.urls else (self.part.page if isinstance(self.part, ManualPart) else "")


@dataclass
class RemoteFile:
    """One file of a hub listing: its repo path, size and the checksum the hub publishes for it."""

    path: str
    size: int
    sha256: str | None
    git_sha1: str | None


HubLister = Callable[[str, HubPart], tuple[str, list[RemoteFile]]]


def _hub_jobs(source: str, entry: SourceEntry, part: HubPart, lister: HubLister) -> list[FileJob]:
    commit, files = lister(source, part)
    if not files:
        raise FetchError(
            f"{source}: no file of {part.repo_id}@{part.revision} matches {part.allow_patterns}; "
            "update the entry in rs5m/fetch/catalogue.yaml"
        )
    return hub_file_jobs(source, entry.folder, part, commit, files)


def hub_file_jobs(
    source: str, folder: str, part: HubPart, commit: str, files: list[RemoteFile]
) -> list[FileJob]:
    """One job per listed hub file, placed at ``<folder>/<path minus strip_prefix>`` (``folder`` may be "").

    LFS files are checked by sha256, the others by their git blob id.
    """
    jobs = []
    for f in files:
        rel = f.path.removeprefix(part.strip_prefix)
        checks = {"sha256": f.sha256, "git_sha1": None if f.sha256 else f.git_sha1}
        jobs.append(
            FileJob(
                source,
                "hf_repo",
                f"{folder}/{rel}" if folder else rel,
                f.size,
                checks,
                (),
                f.path,
                commit,
                part,
            )
        )
    return jobs


def _part_jobs(source: str, entry: SourceEntry, part: Any, lister: HubLister) -> list[FileJob]:
    if isinstance(part, HubPart):
        return _hub_jobs(source, entry, part, lister)
    if isinstance(part, HttpPart):
        return [
            FileJob(
                source,
                "http",
                f"{entry.folder}/{f.name}",
                f.size,
                {"sha256": f.sha256, "md5": f.md5},
                tuple(f.urls),
                part=part,
            )
            for f in part.files
        ]
    return [FileJob(source, "manual", f"{entry.folder}/{f.name}", f.size, part=part) for f in part.files]


def plan_jobs(catalogue: Catalogue, sources: list[str], lister: HubLister) -> tuple[list[FileJob], list[str]]:
    """Every file of ``sources`` in catalogue order, and one line per part that could not be planned.

    Hub parts are listed through ``lister``; a part that cannot be listed (gated, missing, unreachable)
    or matches no file is reported and skipped, so every other source still gets fetched.
    """
    jobs: list[FileJob] = []
    errors: list[str] = []
    for source in sources:
        entry = catalogue.entry(source)
        for part in entry.parts:
            try:
                part_jobs = _part_jobs(source, entry, part, lister)
            except FetchError as exc:
                errors.append(str(exc))
                continue
            for job in part_jobs:
                job.homepage = entry.homepage
            jobs.extend(part_jobs)
    return jobs, errors
