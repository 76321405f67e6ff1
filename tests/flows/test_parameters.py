"""Every deployment's parameters are flat, typed flow parameters the flow knows (what `--param k=v`, the UI
form and `--params` JSON all set field by field), and prefect.yaml names only parameters its flows have."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from prefect.exceptions import ParameterTypeError
from prefect.utilities.callables import parameter_schema

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


def _flow(entrypoint: str):  # noqa: ANN202
    path, name = entrypoint.split(":")
    return getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)


@pytest.mark.parametrize("dep", DEPLOYMENTS, ids=lambda d: f"{d['entrypoint'].split(':')[1]}/{d['name']}")
def test_deployment_parameters_are_flat_flow_parameters(dep: dict) -> None:
    flow = _flow(dep["entrypoint"])
    props = parameter_schema(flow).model_dump()["properties"]
    assert "params" not in props
    assert set(dep["parameters"]) <= set(props), set(dep["parameters"]) - set(props)
    flow.validate_parameters(dep["parameters"])
    assert all(p.get("description") for p in props.values()), "every parameter says what it is (docstring)"


def test_build_parameters_are_typed_with_bounds() -> None:
    from flows.build_rs5m import build_rs5m

    props = parameter_schema(build_rs5m).model_dump()["properties"]
    assert props["wait_lock"]["maximum"] == 7 * 24 * 3600 and props["wait_lock"]["minimum"] == 0
    with pytest.raises(ParameterTypeError, match="wait_lock"):
        build_rs5m.validate_parameters({"wait_lock": -1})
    assert build_rs5m.validate_parameters({"version": "v2", "wait_lock": "3"})["wait_lock"] == 3.0
