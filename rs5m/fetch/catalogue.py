"""The catalogue of where each PUB11 source's metadata lives (``catalogue.yaml``), typed.

A source has a ``folder`` under the destination and one or more parts: a Hugging Face repo, plain HTTP
files, or files to download by hand. Loading checks every field, so a typo in the YAML is one line
naming the entry, not a failure halfway through a 500 GB download.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rs5m.core.schema import Source

PACKAGED = "catalogue.yaml"
_HEX = {"md5": 32, "sha256": 64}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_name(name: str) -> str:
    if not _SAFE_NAME.match(name) or ".." in name.split("/") or name.endswith("/"):
        raise ValueError(f"file name {name!r} must be a relative path without '..'")
    return name


RelName = Annotated[str, AfterValidator(_check_name)]


class HubPart(_Model):
    """Files of a Hugging Face repo matching ``allow_patterns`` (placed without ``strip_prefix``)."""

    kind: Literal["hf_repo"]
    repo_id: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    repo_type: Literal["dataset", "model"] = "dataset"
    revision: str = "main"
    allow_patterns: list[str] = Field(min_length=1)
    strip_prefix: str = ""
    gated: bool = False
    terms_url: str | None = None

    @model_validator(mode="after")
    def _gated_has_terms(self) -> HubPart:
        if self.gated and not self.terms_url:
            raise ValueError(f"{self.repo_id}: a gated repo needs terms_url (where its terms are accepted)")
        return self

    def page(self) -> str:
        """The repo's page on huggingface.co (where gated terms are accepted)."""
        prefix = "datasets/" if self.repo_type == "dataset" else ""
        return self.terms_url or f"https://huggingface.co/{prefix}{self.repo_id}"


class HttpFile(_Model):
    """One plain file: ``urls`` are tried in order; ``size``/``md5``/``sha256`` checked when given."""

    name: RelName
    urls: list[str] = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    md5: str | None = None
    sha256: str | None = None

    @model_validator(mode="after")
    def _hex(self) -> HttpFile:
        for algo, length in _HEX.items():
            value = getattr(self, algo)
            if value is not None and not re.fullmatch(rf"[0-9a-f]{{{length}}}", value):
                raise ValueError(f"{self.name}: {algo} must be {length} lower-case hex digits")
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{self.name}: url {url!r} is not http(s)")
        return self


class HttpPart(_Model):
    """Plain files on web servers, fetched by resumable HTTP."""

    kind: Literal["http"]
    files: list[HttpFile] = Field(min_length=1)


class ManualFile(_Model):
    """A file the user downloads by hand; ``size`` checked when given."""

    name: RelName
    size: int | None = Field(default=None, ge=0)


class ManualPart(_Model):
    """Files behind a page a program cannot use (click-through terms, a browser-only link)."""

    kind: Literal["manual"]
    page: str
    instructions: str
    files: list[ManualFile] = Field(min_length=1)
    optional: bool = False


Part = Annotated[HubPart | HttpPart | ManualPart, Field(discriminator="kind")]


class SourceEntry(_Model):
    """Where one PUB11 source lives: its folder under the destination and its parts."""

    folder: RelName
    homepage: str
    licence: str
    approx_size: str
    rows: str
    verified: str
    notes: str | None = None
    parts: list[Part] = Field(min_length=1)


class Catalogue(_Model):
    """Every source's entry, keyed by its ``rs5m.core.schema.Source`` name."""

    checked: str
    sources: dict[str, SourceEntry]

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, SourceEntry]) -> dict[str, SourceEntry]:
        names = {s.value for s in Source}
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"unknown source(s) {unknown}; expected names from {sorted(names)}")
        folders = [e.folder for e in value.values()]
        dup = sorted({f for f in folders if folders.count(f) > 1})
        if dup:
            raise ValueError(f"two sources share the folder(s) {dup}")
        return value

    def entry(self, source: str) -> SourceEntry:
        """The entry of ``source``; ``ValueError`` naming the catalogue when it has none."""
        if source not in self.sources:
            raise ValueError(f"the catalogue has no entry for {source!r}: add one to catalogue.yaml")
        return self.sources[source]


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue YAML (default: the packaged ``rs5m/fetch/catalogue.yaml``).

    Raises ``FileNotFoundError`` when ``path`` does not exist and ``ValueError`` (one line, naming the
    file) when it is not valid YAML or not a valid catalogue.
    """
    if path is None:
        text = resources.files("rs5m.fetch").joinpath(PACKAGED).read_text(encoding="utf-8")
        where = f"rs5m/fetch/{PACKAGED}"
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"catalogue not found: {p}")
        text, where = p.read_text(encoding="utf-8"), str(p)
    try:
        raw = yaml.safe_load(text)
        return Catalogue.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"catalogue {where} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"catalogue {where}: {loc}: {first['msg']}") from exc
