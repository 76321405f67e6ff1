"""Pre-flight check of a build's inputs (``rs5m inputs check``; the build runs it before Prefect or Dask
start): every source's globs, every file opened and its layout recognised (``adapter.detect``), its
pieces planned, every source's options validated by the adapter's model, and the paths the config
names (option files, detector, scoring checkpoint, RS3 roots, captioner adapter, ranker checkpoints,
sample-server root).

``check_inputs`` never raises for a bad input: it returns an ``InputsReport`` listing every problem
found, never only the first. Costs stay small (a parquet footer, 256 KiB of a text file, 64 KiB of a
JSON document, a zip directory, SQLite ``min/max(rowid)`` per file): damage deeper in a compressed
stream or a JSON document is only found when the file is read.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import ValidationError

from rs5m.config import BuildConfig, SourceInput
from rs5m.sources import get_adapter
from rs5m.sources.base import SourceFormatError

_GLOB_CHARS = set("*?[")


@dataclass
class Problem:
    """One thing that would stop or spoil a build: where (source, path) and what."""

    source: str | None
    path: str | None
    message: str

    def __str__(self) -> str:
        path = os.path.normpath(self.path) if self.path else None
        if self.source is None:  # a config-level path: say what it is first
            return f"{self.message}: {path}" if path else self.message
        return ": ".join(x for x in (self.source, path, self.message) if x)


@dataclass
class FileReport:
    """One input file: its layout, rows (when cheap to know; ``estimated`` for a SQLite rowid span),
    size, and how many pieces (partitions) it splits into."""

    path: str
    layout: str | None = None
    rows: int | None = None
    estimated: bool = False
    size: int | None = None
    pieces: int | None = None
    problem: str | None = None


@dataclass
class SourceReport:
    """One source: its files and its problems (options, globs, files)."""

    name: str
    files: list[FileReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def layouts(self) -> list[str]:
        """The distinct layouts of its files, in file order."""
        return list(dict.fromkeys(f.layout for f in self.files if f.layout))

    def rows(self) -> int | None:
        """Total rows when every file's count is known, else ``None``."""
        counts = [f.rows for f in self.files]
        return sum(c for c in counts if c is not None) if counts and None not in counts else None


@dataclass
class InputsReport:
    """What ``check_inputs`` found: per source, the config-level paths, and every problem."""

    sources: list[SourceReport]
    problems: list[Problem]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``ok``, ``seconds``, ``sources``, ``problems``)."""
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "sources": [
                {**asdict(s), "layouts": s.layouts(), "rows": s.rows()} for s in self.sources
            ],  # fmt: skip
            "problems": [asdict(p) | {"text": str(p)} for p in self.problems],
        }


def _option_errors(exc: ValidationError) -> list[str]:
    return [f"option {'.'.join(str(x) for x in e['loc']) or '?'}: {e['msg']}" for e in exc.errors()]


def _expand(pattern: str) -> tuple[list[str], str | None]:
    """Paths a files entry names, or a problem when it names nothing."""
    matches = sorted(glob.glob(pattern, recursive=True))
    if matches:
        return matches, None
    if _GLOB_CHARS & set(pattern):
        return [], f"no file matches {pattern!r}"
    return [], f"missing file {pattern!r}"


def _check_file(src: SourceInput, path: str, options: Any, rows_per_piece: int) -> FileReport:
    rep = FileReport(path)
    if os.path.isdir(path):
        rep.problem = "is a directory, expected a file (name the files with a glob, e.g. DIR/*.parquet)"
        return rep
    adapter = get_adapter(src.name)
    try:
        rep.size = os.path.getsize(path)
        info = adapter.detect(path, options)
        rep.layout, rep.rows, rep.estimated = info.name, info.rows, info.estimated
        rep.pieces = len(adapter.pieces(path, options, rows_per_piece))
    except SourceFormatError as exc:
        rep.problem = str(exc).removeprefix(f"{path}: ")
    except (OSError, ValueError) as exc:
        rep.problem = f"cannot be read ({exc})"
    return rep


def _option_paths(src: SourceInput) -> list[str]:
    """Problems with the files a source's options name (``*_file`` options; an adapter's
    ``folder_options`` may also name a folder)."""
    folders = getattr(get_adapter(src.name), "folder_options", frozenset())
    out = []
    for key, val in src.options.items():
        if key.endswith("_file") and isinstance(val, str):
            if not os.path.exists(val):
                out.append(f"option {key}: missing file {val!r}")
            elif os.path.isdir(val) and key not in folders:
                out.append(f"option {key}: {val!r} is a directory, expected a file")
            elif not os.access(val, os.R_OK):
                out.append(f"option {key}: {val!r} is not readable")
    return out


def check_source(src: SourceInput, rows_per_piece: int) -> SourceReport:
    """Options, globs and files of one source; its problems listed in ``SourceReport.problems``."""
    rep = SourceReport(src.name)
    adapter = get_adapter(src.name)
    try:
        options = adapter.options_model(**src.options)
    except ValidationError as exc:
        rep.problems += [Problem(src.name, None, m) for m in _option_errors(exc)]
        options = None
    rep.problems += [Problem(src.name, None, m) for m in _option_paths(src)]
    seen: set[str] = set()
    for pattern in src.files:
        paths, problem = _expand(pattern)
        if problem:
            rep.problems.append(Problem(src.name, None, problem))
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            if options is None:
                rep.files.append(FileReport(path, size=_size(path)))
                continue
            f = _check_file(src, path, options, rows_per_piece)
            rep.files.append(f)
            if f.problem:
                rep.problems.append(Problem(src.name, path, f.problem))
    return rep


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _path_problem(what: str, path: str | None, kind: str = "file") -> Problem | None:
    if not path:
        return None
    if not os.path.exists(path):
        return Problem(None, path, f"{what}: missing {kind}")
    if kind == "file" and os.path.isdir(path):
        return Problem(None, path, f"{what}: a directory, expected a file")
    if kind == "folder" and not os.path.isdir(path):
        return Problem(None, path, f"{what}: not a folder")
    return None


def config_paths(cfg: BuildConfig) -> list[Problem]:
    """Problems with the non-source paths a build config names."""
    checks: list[tuple[str, str | None, str]] = [
        ("detector checkpoint", cfg.detector, "file"),
        ("scoring.checkpoint", cfg.scoring.checkpoint, "file"),
    ]
    if cfg.sample_server is not None:
        checks.append(("sample_server.root", cfg.sample_server.root, "folder"))
    if cfg.rs3 is not None:
        for s in cfg.rs3.sources:
            checks.append((f"rs3 source {s.name} root", s.root, "folder"))
        checks.append(("rs3.captioner.adapter", cfg.rs3.captioner.adapter, "folder"))
        for key in ("ranker_a", "ranker_b"):
            checks.append((f"rs3.{key}.checkpoint", getattr(cfg.rs3, key).checkpoint, "file"))
    if os.path.exists(cfg.root) and not os.path.isdir(cfg.root):
        checks.append(("root (the data folder)", cfg.root, "folder"))
    return [p for what, path, kind in checks if (p := _path_problem(what, path, kind))]


def check_inputs(cfg: BuildConfig, rows_per_piece: int | None = None) -> InputsReport:
    """Check every input of ``cfg`` (see the module docstring) and return the report; never raises for
    bad inputs. ``rows_per_piece`` (default ``cfg.ingest.rows_per_partition``) sizes the pieces."""
    start = time.perf_counter()
    per_piece = rows_per_piece or cfg.ingest.rows_per_partition
    sources = [check_source(src, per_piece) for src in cfg.sources]
    problems = [p for s in sources for p in s.problems] + config_paths(cfg)
    return InputsReport(sources, problems, time.perf_counter() - start)


def require_inputs(cfg: BuildConfig) -> InputsReport:
    """``check_inputs``, then ``ValueError`` listing every problem (one per line) when there is any: what a
    build runs before it creates its version, starts Prefect or Dask."""
    report = check_inputs(cfg)
    if not report.ok:
        lines = "\n".join(f"  {p}" for p in report.problems)
        raise ValueError(f"{len(report.problems)} input problem(s); nothing was started:\n{lines}")
    return report
