"""``<dest>/fetch-manifest.json``: every fetched file with its size, checksums, origin and revision.

The manifest is what makes a rerun cheap: a file whose entry matches what the catalogue (or the hub)
expects, and whose size and modification time on disk are still those recorded, is not fetched or hashed
again. It is rewritten atomically after every file, so a killed run loses at most the file in flight.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rs5m.core.io import write_json

MANIFEST_NAME = "fetch-manifest.json"
FORMAT = 1


def now_iso() -> str:
    """The current UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Manifest:
    """Thread-safe view of one destination's manifest; ``record`` persists immediately."""

    def __init__(self, dest: str | os.PathLike[str]) -> None:
        self.dest = Path(dest)
        self.path = self.dest / MANIFEST_NAME
        self._lock = threading.Lock()
        self._files: dict[str, dict[str, Any]] = self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(
                f"{self.path}: unreadable ({exc}); delete it and rerun (files are re-checked, not re-fetched)"
            ) from exc
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            raise ValueError(f"{self.path}: not a fetch manifest; delete it and rerun")
        return {k: v for k, v in files.items() if isinstance(v, dict)}

    def get(self, rel: str) -> dict[str, Any] | None:
        """The entry of the file at ``rel`` (relative to the destination), or ``None``."""
        with self._lock:
            entry = self._files.get(rel)
            return dict(entry) if entry is not None else None

    def entries(self) -> dict[str, dict[str, Any]]:
        """A copy of every entry, keyed by relative path."""
        with self._lock:
            return {k: dict(v) for k, v in self._files.items()}

    def record(self, rel: str, entry: dict[str, Any]) -> dict[str, Any]:
        """Store ``entry`` (plus path, on-disk mtime and ``fetched_at``) for ``rel`` and rewrite the file."""
        st = (self.dest / rel).stat()
        full = {**entry, "path": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        full.setdefault("fetched_at", now_iso())
        with self._lock:
            self._files[rel] = full
            write_json(self.path, {"format": FORMAT, "files": self._files})
        return full

    def forget(self, rel: str) -> None:
        """Drop the entry of ``rel`` (its file is being replaced)."""
        with self._lock:
            if self._files.pop(rel, None) is not None:
                write_json(self.path, {"format": FORMAT, "files": self._files})

    def unchanged(self, rel: str, expected: dict[str, Any]) -> bool:
        """Whether ``rel`` is recorded with ``expected``'s size and checksums and is untouched on disk.

        ``expected`` holds what is known beforehand (``size``, ``sha256``, ``md5``, ``git_sha1``; ``None``
        values are unknown). Untouched means the file exists with the recorded size and mtime.
        """
        entry = self.get(rel)
        if entry is None:
            return False
        for key, want in expected.items():
            if want is not None and entry.get(key) != want:
                return False
        try:
            st = (self.dest / rel).stat()
        except OSError:
            return False
        return st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns")
