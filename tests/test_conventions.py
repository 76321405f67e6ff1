"""Project conventions: the library's import rule (no Prefect, no dask.distributed, no flows/tasks/cli, no
cycles between its subpackages), one owner of the on-disk layout, and every flow and deployment importable."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("prefect", "prefect_dask", "distributed", "flows", "tasks", "cli")


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute imports; any depth: functions import lazily too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_library_never_imports_orchestration_or_the_cli() -> None:
    offenders = sorted(
        f"{p.relative_to(ROOT)}: {m}"
        for p in (ROOT / "rs5m").rglob("*.py")
        for m in _imports(p)
        if m.split(".")[0] in FORBIDDEN
    )
    assert offenders == []


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "rs5m" else None


def test_no_import_cycles_between_library_subpackages() -> None:
    edges: dict[str, set[str]] = {}
    for p in (ROOT / "rs5m").rglob("*.py"):
        rel = p.relative_to(ROOT).with_suffix("")
        src = _subpackage(".".join(rel.parts)) if len(rel.parts) > 2 else None
        if src is None:
            continue
        for m in _imports(p):
            dst = _subpackage(m)
            if dst and dst != src and (ROOT / "rs5m" / dst).is_dir():
                edges.setdefault(src, set()).add(dst)

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        return any(n == b or (n not in seen and reaches(n, b, seen | {n})) for n in edges.get(a, ()))

    cycles = sorted(f"{a} <-> {b}" for a in edges for b in edges[a] if reaches(b, a, {b}))
    assert cycles == [], f"import cycles between rs5m subpackages: {cycles}"


def _code_files() -> list[Path]:
    return [p for top in ("rs5m", "cli", "flows", "tasks") for p in (ROOT / top).rglob("*.py")]


def test_one_module_owns_the_layout() -> None:
    """The lineage DB's name, stats folders and the versions folder are spelled in rs5m.core.layout only."""
    needles = ('"lineage.duckdb"', '/ "_stats"', '"_stats" /', '/ "versions"', '"versions" /')
    owners = {
        needle: sorted(
            str(p.relative_to(ROOT)) for p in _code_files() if needle in p.read_text(encoding="utf-8")
        )
        for needle in needles
    }
    assert all(found in ([], ["rs5m/core/layout.py"]) for found in owners.values()), owners
    assert owners['"lineage.duckdb"'] == ["rs5m/core/layout.py"]


def test_stage_names_are_spelled_once() -> None:
    """Stage names are ``StageName`` values: no path, stats or comparison spells one outside rs5m/core."""
    from rs5m.core.schema import StageName

    shapes = ('/ "{}"', '"{}/', 'stage="{}"', 'stage == "{}"', '"{}",  # stage', 'stage: "{}"')
    offenders = sorted(
        f"{p.relative_to(ROOT)}: {shape.format(s.value)}"
        for p in _code_files()
        if p.parent.name != "core"
        for s in StageName
        for shape in shapes
        if shape.format(s.value) in p.read_text(encoding="utf-8")
    )
    assert offenders == []
