"""Fixtures of the fetch tests: a Range-capable file server, the hub stand-in, a catalogue writer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rs5m.config.fetch import FetchConfig
from tests.http_stub import FileServer, serving
from tests.hub_stub import HubStub


@pytest.fixture
def files() -> Iterator[FileServer]:
    """A file server on 127.0.0.1 for one test."""
    with serving(FileServer()) as server:
        yield server


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubStub]:
    """The hub stand-in, with ``HF_ENDPOINT`` pointing at it and no token or cache from the machine."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with serving(HubStub()) as stub:
        monkeypatch.setenv("HF_ENDPOINT", stub.base)
        yield stub


def entry(folder: str, *parts: dict[str, Any]) -> dict[str, Any]:
    """A catalogue entry with placeholder descriptive fields."""
    return {
        "folder": folder,
        "homepage": "https://example.org/home",
        "licence": "test",
        "approx_size": "tiny",
        "rows": "few",
        "verified": "test data",
        "parts": list(parts),
    }


@pytest.fixture
def catalogue(tmp_path: Path) -> Callable[..., Path]:
    """Write ``{source: entry}`` as a catalogue YAML; returns its path."""

    def write(**sources: dict[str, Any]) -> Path:
        path = tmp_path / "catalogue.yaml"
        path.write_text(yaml.safe_dump({"checked": "test", "sources": sources}), encoding="utf-8")
        return path

    return write


@pytest.fixture
def config(tmp_path: Path) -> Callable[..., FetchConfig]:
    """A ``FetchConfig`` into ``tmp_path/dest`` with no pauses between retries."""

    def make(cat: Path, **kw: Any) -> FetchConfig:
        base: dict[str, Any] = {"dest": str(tmp_path / "dest"), "catalogue": str(cat), "retry_wait_s": 0}
        base.update(timeout_s=10, chunk_bytes=4096, workers=2)
        return FetchConfig(**{**base, **kw})

    return make
