"""Adapter identity: a content fingerprint of a peft adapter folder (no torch import; cheap to call).

``adapter_fingerprint(dir)`` = sha256 over, for every regular file whose name starts with ``adapter_``
(``adapter_config.json``, ``adapter_model.safetensors`` or ``.bin``) in name order, the name, a NUL and
the bytes. The model card (README.md) and ``finetune.json`` are left out, so re-describing a run does
not change its identity. Raises ``FileNotFoundError`` when the folder has no adapter files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def adapter_fingerprint(path: str | os.PathLike[str]) -> str:
    """sha256 hex of the adapter files in ``path`` (module contract)."""
    root = Path(path)
    files = sorted(p for p in root.glob("adapter_*") if p.is_file()) if root.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no peft adapter files (adapter_*) in {root}")
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
