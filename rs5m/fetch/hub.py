"""Hugging Face repos through ``huggingface_hub``: list at a pinned commit, download, verify, explain errors.

The token is ``HF_TOKEN`` (else the login saved by ``hf auth login``); ``HF_ENDPOINT`` is read on every
call, so a mirror (or the tests' local stand-in) works even when ``huggingface_hub`` was imported first.
Every hub error becomes one line: a gated repo names the page where its terms are accepted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import filter_repo_objects

from rs5m.fetch.catalogue import HubPart
from rs5m.fetch.plan import FetchError, FileJob, RemoteFile
from rs5m.fetch.progress import Progress, tqdm_adapter
from rs5m.fetch.verify import hash_file, mismatch

DEFAULT_ENDPOINT = "https://huggingface.co"
HUB_ERRORS = (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, httpx2.TransportError)


def hub_endpoint() -> str:
    """The hub to talk to: ``HF_ENDPOINT`` or huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_token() -> str | None:
    """``HF_TOKEN`` when set (``None`` lets huggingface_hub use a saved login)."""
    return os.environ.get("HF_TOKEN") or None


class HubUnreachable(FetchError):
    """The hub could not be reached at all (offline, DNS, refused): callers may fall back to local files."""


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def explain(exc: BaseException, what: str, part: HubPart) -> FetchError:
    """One-line ``FetchError`` for a hub failure while fetching ``what`` (a source name or file)."""
    repo = f"{part.repo_id}@{part.revision}"
    token_hint = "set HF_TOKEN to a read token of that account (https://huggingface.co/settings/tokens)"
    if isinstance(exc, GatedRepoError) or (part.gated and _status(exc) in (401, 403)):
        return FetchError(
            f"{what}: {part.repo_id} is gated ({_status(exc) or 'no access'}): log in at {part.page()}, "
            f"accept its terms, then {token_hint} and rerun",
            whole_part=True,
        )
    if isinstance(exc, RevisionNotFoundError):
        return FetchError(f"{what}: revision {part.revision!r} of {part.repo_id} not found (catalogue.yaml)")
    if isinstance(exc, RepositoryNotFoundError) or _status(exc) in (401, 404):
        return FetchError(
            f"{what}: {part.repo_id} not found on {hub_endpoint()} (or private): check repo_id in "
            f"rs5m/fetch/catalogue.yaml, or {token_hint}",
            whole_part=True,
        )
    if isinstance(exc, EntryNotFoundError):
        return FetchError(f"{what}: file gone from {repo}: rerun to list the repo again")
    if _status(exc) == 403:
        return FetchError(f"{what}: {part.repo_id} refused access (403): {token_hint}", whole_part=True)
    if isinstance(exc, (httpx2.TransportError, OfflineModeIsEnabled, LocalEntryNotFoundError)):
        return HubUnreachable(
            f"{what}: cannot reach {hub_endpoint()} ({type(exc).__name__}): check the network",
            whole_part=True,
        )
    return FetchError(f"{what}: {repo}: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}")


def list_hub_files(source: str, part: HubPart) -> tuple[str, list[RemoteFile]]:
    """The commit ``part.revision`` points at and every file there matching ``allow_patterns``.

    For a part marked gated, access to the first file is checked too (a HEAD request), so a missing
    token fails here, before any download starts. Raises ``FetchError`` with one line.
    """
    api = HfApi(endpoint=hub_endpoint(), token=hub_token())
    try:
        commit = api.repo_info(part.repo_id, repo_type=part.repo_type, revision=part.revision).sha
        tree = api.list_repo_tree(part.repo_id, repo_type=part.repo_type, revision=commit, recursive=True)
        files = [f for f in tree if isinstance(f, RepoFile)]
        matched = list(filter_repo_objects(files, allow_patterns=part.allow_patterns, key=lambda f: f.path))
        if part.gated and matched:
            url = hf_hub_url(
                part.repo_id,
                matched[0].path,
                repo_type=part.repo_type,
                revision=commit,
                endpoint=hub_endpoint(),
            )
            get_hf_file_metadata(url, token=hub_token(), endpoint=hub_endpoint())
    except HUB_ERRORS as exc:
        raise explain(exc, source, part) from exc
    out = [
        RemoteFile(f.path, int(f.size), f.lfs.sha256 if f.lfs is not None else None, f.blob_id)
        for f in matched
    ]
    return str(commit), out


def _download(job: FileJob, dest: Path, progress: Progress, force: bool) -> Path:
    part = job.part
    assert isinstance(part, HubPart) and job.repo_path is not None
    name = job.repo_path.removeprefix(part.strip_prefix)
    local_dir = dest / job.rel[: len(job.rel) - len(name)]
    try:
        got = hf_hub_download(
            part.repo_id,
            filename=job.repo_path,
            repo_type=part.repo_type,
            revision=job.revision,
            local_dir=local_dir,
            token=hub_token(),
            endpoint=hub_endpoint(),
            force_download=force,
            tqdm_class=tqdm_adapter(progress, job.rel),
        )
    except HUB_ERRORS as exc:
        raise explain(exc, f"{job.source}: {job.rel}", part) from exc
    target = dest / job.rel
    if Path(got).resolve() != target.resolve():  # strip_prefix: move it where full.yaml looks
        os.replace(got, target)
    return target


def prune_stripped(dest: Path, jobs: list[FileJob]) -> None:
    """Remove the folders that ``strip_prefix`` moves emptied (after every download has finished)."""
    for job in jobs:
        if not (isinstance(job.part, HubPart) and job.part.strip_prefix and job.repo_path):
            continue
        folder = dest / job.rel[: len(job.rel) - len(job.repo_path.removeprefix(job.part.strip_prefix))]
        leftover = folder / Path(job.repo_path).parent
        while leftover != folder and leftover.is_dir() and not any(leftover.iterdir()):
            leftover.rmdir()
            leftover = leftover.parent


def fetch_hub(job: FileJob, dest: Path, progress: Progress) -> dict[str, Any]:
    """Download one hub file to ``dest/job.rel`` and check its size and sha256 (or git blob id).

    A mismatch (or an interrupted transfer huggingface_hub reports as inconsistent) deletes the file and
    fetches it once more; a second failure raises ``FetchError`` with one line.
    """
    problem = ""
    for force in (False, True):
        try:
            target = _download(job, dest, progress, force)
        except OSError as exc:
            if "Consistency check failed" not in str(exc):  # disk full etc.: not the transfer's fault
                raise
            problem = str(exc).strip().splitlines()[0][:200]
            continue
        digests = hash_file(target, job.checksums)
        problem = mismatch(target.stat().st_size, digests, job.expected()) or ""
        if not problem:
            return {
                **digests,
                "source": job.source,
                "origin": job.origin(),
                "revision": job.revision,
                "kind": "hf_repo",
            }
        target.unlink(missing_ok=True)
    raise FetchError(f"{job.source}: {job.rel}: {problem} even after a fresh download from {job.origin()}")
