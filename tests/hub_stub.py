"""A local stand-in for the Hugging Face Hub that the real ``huggingface_hub`` client talks to.

Point ``HF_ENDPOINT`` at ``HubStub().start().base``. It answers what ``snapshot_download`` and
``hf_hub_download`` (huggingface_hub 2.4) call:

* ``GET /api/{models,datasets}/<repo>/revision/<rev>``: repo info with ``sha`` and ``siblings``;
* ``GET /api/{models,datasets}/<repo>/tree/<rev>[/<dir>]?recursive=...``: files with size, git ``oid``
  and, for LFS files (all files of ``lfs_min`` bytes or more), ``lfs: {oid: sha256, size, pointerSize}``;
* ``HEAD|GET /[datasets/]<repo>/resolve/<rev>/<path>``: ``X-Repo-Commit``, ``ETag`` (git sha1, or the
  sha256 for LFS with ``X-Linked-Etag``/``X-Linked-Size``), ``Content-Length``, Range requests.

Errors carry the hub's ``X-Error-Code`` headers: ``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``, and ``GatedRepo`` (401 without a token, 403 with a token not granted access) for a
repo added with ``gated_token`` (files listed publicly, content gated, as on the real hub).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from tests.http_stub import FileServer, RangeHandler

_API = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)/(revision|tree)/([^/]+)(/.*)?$")
_RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def git_sha1(data: bytes) -> str:
    """The git blob id of ``data``."""
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()


@dataclass
class Repo:
    """One repo at one commit; ``gated_token`` set = gated, that token has been granted access."""

    repo_id: str
    repo_type: str
    files: dict[str, bytes]
    commit: str = "0" * 39 + "1"
    gated_token: str | None = None
    lfs_min: int = 1024
    downloads: dict[str, int] = field(default_factory=dict)

    def is_lfs(self, path: str) -> bool:
        return len(self.files[path]) >= self.lfs_min

    def tree(self) -> list[dict]:
        out = []
        for path, data in sorted(self.files.items()):
            entry = {"type": "file", "path": path, "size": len(data), "oid": git_sha1(data)}
            if self.is_lfs(path):
                entry["lfs"] = {
                    "oid": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                }
            out.append(entry)
        return out


class HubHandler(RangeHandler):
    """Routes the hub API and ``resolve`` URLs to the stub's repos."""

    def route(self, path: str, head: bool) -> bool:
        api, resolve = _API.match(path), _RESOLVE.match(path)
        if api:
            self._api(api.group(1)[:-1], api.group(2), api.group(3), api.group(4))
            return True
        if resolve:
            kind = "dataset" if resolve.group(1) else "model"
            self._resolve(kind, resolve.group(2), resolve.group(3), resolve.group(4), head)
            return True
        return False

    def _repo(self, kind: str, repo_id: str, rev: str) -> Repo | None:
        repo = self.owner.repos.get((kind, repo_id))  # type: ignore[attr-defined]
        if repo is None:
            self.send_error_json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            return None
        if rev not in ("main", repo.commit):
            self.send_error_json(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
            return None
        return repo

    def _api(self, kind: str, repo_id: str, what: str, rev: str) -> None:
        repo = self._repo(kind, repo_id, rev)
        if repo is None:
            return
        if what == "tree":
            self.send_error_json(200, repo.tree())
            return
        info = {
            "id": repo_id,
            "sha": repo.commit,
            "private": False,
            "gated": "manual" if repo.gated_token else False,
            "siblings": [{"rfilename": p} for p in sorted(repo.files)],
        }
        self.send_error_json(200, info)

    def _gate(self, repo: Repo) -> bool:
        if repo.gated_token is None:
            return True
        auth = self.headers.get("Authorization") or ""
        if not auth:
            msg = f"Access to {repo.repo_type} {repo.repo_id} is restricted. You must be authenticated."
            self.send_error_json(401, {"error": msg}, {"X-Error-Code": "GatedRepo", "X-Error-Message": msg})
            return False
        if auth != f"Bearer {repo.gated_token}":
            msg = f"Access to {repo.repo_type} {repo.repo_id} is restricted; you are not authorized."
            self.send_error_json(403, {"error": msg}, {"X-Error-Code": "GatedRepo", "X-Error-Message": msg})
            return False
        return True

    def _resolve(self, kind: str, repo_id: str, rev: str, path: str, head: bool) -> None:
        repo = self._repo(kind, repo_id, rev)
        if repo is None or not self._gate(repo):
            return
        data = repo.files.get(path)
        if data is None:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit}
            self.send_error_json(404, {"error": "Entry not found"}, headers)
            return
        headers = {"X-Repo-Commit": repo.commit}
        if repo.is_lfs(path):
            sha = hashlib.sha256(data).hexdigest()
            headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
        else:
            headers["ETag"] = f'"{git_sha1(data)}"'
        if not head:
            repo.downloads[path] = repo.downloads.get(path, 0) + 1
        self.send_bytes(f"{kind}:{repo_id}:{path}", data, head, headers)


class HubStub(FileServer):
    """The hub stand-in: ``add(repo)`` then ``start()``; ``bytes_served`` is keyed ``type:repo:path``."""

    handler = HubHandler

    def __init__(self) -> None:
        super().__init__()
        self.repos: dict[tuple[str, str], Repo] = {}
        self._server.owner = self  # type: ignore[attr-defined]

    def add(self, repo: Repo) -> Repo:
        """Serve ``repo`` (replacing one with the same type and id)."""
        self.repos[(repo.repo_type, repo.repo_id)] = repo
        return repo
