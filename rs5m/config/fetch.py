"""Typed configuration of one metadata fetch (``rs5m fetch-metadata``, flow ``fetch-pub11-metadata``).

Every knob of the fetch lives here; where each source's files live is data, in
``rs5m/fetch/catalogue.yaml`` (``catalogue`` points at another copy of it).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rs5m.core.schema import Source


class FetchConfig(BaseModel):
    """What to fetch, where to, and how hard to try.

    ``sources`` empty means all 11 PUB11 sources. ``verify`` re-hashes files already on disk instead of
    trusting the manifest's size and modification time. ``retries`` counts resumed attempts after a dropped
    connection; a checksum or size mismatch always gets exactly one fresh download.
    """

    model_config = ConfigDict(extra="forbid")

    dest: str = Field(description="folder that receives <source folder>/<file> and fetch-manifest.json")
    sources: list[str] = Field(default_factory=list, description="PUB11 source names; empty = all")
    workers: int = Field(default=4, ge=1, le=64, description="files fetched at once")
    dry_run: bool = Field(default=False, description="list what would be fetched, with sizes; fetch nothing")
    verify: bool = Field(default=False, description="re-hash files already present instead of trusting mtime")
    catalogue: str | None = Field(default=None, description="catalogue YAML; default: the packaged one")
    retries: int = Field(default=5, ge=0, le=100, description="resumed attempts after a dropped transfer")
    retry_wait_s: float = Field(default=2.0, ge=0, le=600, description="pause before attempt n: n x this")
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="socket timeout of one HTTP request")
    chunk_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 28, description="read size of HTTP bodies")

    @field_validator("sources")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        names = [s.value for s in Source]
        unknown = [s for s in value if s not in names]
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; the PUB11 sources are {', '.join(names)}")
        return list(dict.fromkeys(value))

    def selected(self, available: Iterable[str] | None = None) -> list[str]:
        """The sources to fetch, in the order of the RS5M funnel table.

        With no ``sources`` given: every source in ``available`` (the catalogue's), else all 11.
        """
        everything = {s.value for s in Source} if available is None else set(available)
        chosen = set(self.sources) if self.sources else everything
        return [s.value for s in Source if s.value in chosen]
