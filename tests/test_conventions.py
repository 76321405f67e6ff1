"""Project conventions: the library never imports Prefect or dask.distributed; every flow imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = re.compile(r"^\s*(import|from)\s+(prefect|prefect_dask|distributed)\b", re.M)


def test_library_never_imports_prefect_or_distributed() -> None:
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "rs5m").rglob("*.py") if FORBIDDEN.search(p.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in (ROOT / "flows").glob("*.py") if p.stem != "__init__")
)
def test_every_flow_module_imports(module: str) -> None:
    importlib.import_module(f"flows.{module}")


def test_every_deployment_entrypoint_resolves() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for dep in spec["deployments"]:
        path, func = dep["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, func)
        assert hasattr(flow, "fn"), f"{dep['name']}: {func} is not a Prefect flow"
        config = dep.get("parameters", {}).get("params", {}).get("config")
        if config:
            assert (ROOT / config).is_file(), f"{dep['name']}: config {config} missing"


def test_cli_lists_every_command() -> None:
    from cli.main import COMMANDS, build_parser

    help_text = build_parser().format_help()
    for name in COMMANDS:
        assert name in help_text
