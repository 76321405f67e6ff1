"""One YAML loader and one path rule for every config of the project.

**The path rule.** A config model declares its path fields once, with ``PathStr`` (or ``ConfigPath(...)``
in ``Annotated``; ``PathKeys`` for a mapping whose keys ending in ``_file`` hold paths). When a config is
loaded from a file, every relative path in it, written or left at its default (``root`` included), is
relative to the folder of that file; ``~`` and ``$VARS`` are expanded first, and a URL (``scheme://...``)
stays as written. A path given as an override (a command-line flag, a flow parameter) is relative to the
working directory, as every command-line path is. After loading, every path field holds an absolute path.

``load_config(path, model_cls, overrides)`` reads the YAML, validates it (one-line errors naming the file
and the key), resolves the paths and remembers how each path was written, so that
``ConfigModel.portable_dump`` (what config hashes are made of) does not depend on where the checkout sits.
"""

from __future__ import annotations

import copy
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError


class ConfigPath:
    """Marks a ``str`` field as a path. ``split``: several paths joined by it (``a.tar::b.tar``);
    ``keep``: words that are not paths (``auto``); ``if_exists``: a path only when that file exists
    (else a name, e.g. a model hub id)."""

    def __init__(self, *, split: str | None = None, keep: tuple[str, ...] = (), if_exists: bool = False):
        self.split, self.keep, self.if_exists = split, keep, if_exists

    def resolve(self, value: str, base: Path) -> str:
        """``value`` with every relative part made absolute against ``base`` (see the module docstring)."""
        if value in self.keep or not value:
            return value
        parts = value.split(self.split) if self.split else [value]
        return (self.split or "").join(self._one(p, base) for p in parts)

    def _one(self, value: str, base: Path) -> str:
        if "://" in value:
            return value
        expanded = os.path.expanduser(os.path.expandvars(value))
        if os.path.isabs(expanded):
            return expanded
        resolved = os.path.normpath(base / expanded)
        return value if self.if_exists and not os.path.exists(resolved) else resolved


class PathKeys:
    """Marks a ``dict`` field whose keys ending in ``suffix`` hold paths (source ``options``)."""

    def __init__(self, suffix: str = "_file"):
        self.suffix = suffix


PATH = ConfigPath()
PathStr = Annotated[str, PATH]


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys are errors; remembers how its paths were written."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    _written: dict[str, str] = PrivateAttr(default_factory=dict)

    def portable_dump(self, exclude: set[str] | None = None) -> dict[str, Any]:
        """``model_dump`` (JSON types) with every path loaded from a file shown as written in it.

        The same config file in two checkouts gives the same result, so hashes of it stay put.
        """
        written = self._written

        def back(obj: Any) -> Any:
            if isinstance(obj, dict):
                return {k: back(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [back(v) for v in obj]
            return written.get(obj, obj) if isinstance(obj, str) else obj

        return back(self.model_dump(mode="json", exclude=exclude))


M = TypeVar("M", bound=BaseModel)
Fix = Callable[[ConfigPath, str], str]


def _unwrap(tp: Any) -> tuple[Any, tuple[Any, ...]]:
    meta: tuple[Any, ...] = ()
    while typing.get_origin(tp) is Annotated:
        tp, *more = typing.get_args(tp)
        meta += tuple(more)
    return tp, meta


def _visit(value: Any, tp: Any, markers: tuple[Any, ...], fix: Fix) -> Any:
    tp, more = _unwrap(tp)
    markers = (*markers, *more)
    if isinstance(value, BaseModel):
        walk_paths(value, fix)
        return value
    path = next((m for m in markers if isinstance(m, ConfigPath)), None)
    if path is not None and isinstance(value, str):
        return fix(path, value)
    keys = next((m for m in markers if isinstance(m, PathKeys)), None)
    if keys is not None and isinstance(value, dict):
        return {
            k: fix(PATH, v) if k.endswith(keys.suffix) and isinstance(v, str) else v for k, v in value.items()
        }
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            res = _visit(value, arm, markers, fix)
            if res is not value:
                return res
        return value
    if isinstance(value, list) and origin is list:
        (elem,) = typing.get_args(tp) or (Any,)
        return [_visit(v, elem, (), fix) for v in value]
    if isinstance(value, dict) and origin is dict:
        _, elem = typing.get_args(tp) or (Any, Any)
        return {k: _visit(v, elem, (), fix) for k, v in value.items()}
    return value


def walk_paths(model: BaseModel, fix: Fix) -> None:
    """Replace each declared path value ``v`` in ``model`` (nested models, lists, unions) by ``fix(m, v)``."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        new = _visit(value, field.annotation, tuple(field.metadata), fix)
        if new is not value:
            model.__dict__[name] = new  # not __setattr__: the field was not "set" by the user


def _path_marker(model_cls: type[BaseModel], dotted: str) -> ConfigPath | None:
    """The path marker of the field at ``dotted`` (``model.checkpoint``), or None when it is not a path."""
    cls: Any = model_cls
    *parents, leaf = dotted.split(".")
    for part in [*parents, leaf]:
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return None
        tp, meta = _unwrap(field.annotation)
        arms = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
        if part == leaf:
            meta = (*field.metadata, *meta, *(m for arm in arms for m in _unwrap(arm)[1]))
            return next((m for m in meta if isinstance(m, ConfigPath)), None)
        cls = next((a for a in arms if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return None


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw["a"]["b"] = value`` for ``dotted="a.b"``, creating sections on the way."""
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {dotted!r}: {part!r} is not a section")
    node[leaf] = value


def read_yaml(path: str | os.PathLike[str], section: str | None = None) -> dict[str, Any]:
    """The top-level mapping of a YAML file (or its ``section`` when present); one-line errors.

    ``FileNotFoundError`` for a missing file, ``ValueError`` for unreadable YAML or a top level that is
    not a mapping (an empty file is an empty mapping).
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "not found"
        raise FileNotFoundError(f"config {what}: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"config {p} is not valid YAML: {exc.problem or exc}{where}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read config {p}: {' '.join(str(exc).split())}") from None
    if raw is None:
        raw = {}
    if section and isinstance(raw, dict) and isinstance(raw.get(section), dict):
        raw = raw[section]
    if not isinstance(raw, dict):
        raise ValueError(f"config {p} must be a mapping of keys at the top level, not a {type(raw).__name__}")
    return raw


def one_line(exc: ValidationError, where: str) -> str:
    """A pydantic error as one line: each problem as ``key: message``; unknown keys named as such."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        else:
            parts.append(f"{loc}: {err['msg']}")
    return f"invalid config {where}: " + "; ".join(parts)[:800]


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top: nested mappings merged, anything else replaced (a copy)."""
    out = copy.deepcopy(base)
    for key, val in over.items():
        out[key] = (
            deep_merge(out[key], val) if isinstance(val, dict) and isinstance(out.get(key), dict) else val
        )
    return out


def overlay(overrides: dict[str, Any] | None, named: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the ``named`` values that are not ``None`` on top: a flow's named parameters
    win over its generic ``overrides`` dict (``None`` is "not given", as in ``load_config``)."""
    return {**(overrides or {}), **{k: v for k, v in named.items() if v is not None}}


def load_config(
    path: str | os.PathLike[str],
    model_cls: type[M],
    overrides: Mapping[str, Any] | None = None,
    *,
    section: str | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> M:
    """Load the YAML at ``path`` as ``model_cls`` with the path rule of this module.

    ``overrides``: dotted keys (``model.checkpoint``) replacing the file's values, ``None`` skipped; a path
    among them is relative to the working directory. ``section``: read ``raw[section]`` when the file nests
    the config under it. ``prepare(raw)`` runs before the overrides (presets). Raises ``FileNotFoundError``
    or ``ValueError`` with one line naming the file.
    """
    p = Path(path)
    raw = read_yaml(p, section)
    if prepare is not None:
        raw = prepare(raw)
    over: dict[str, Any] = {}
    for key, val in (overrides or {}).items():
        if val is None:
            continue
        marker = _path_marker(model_cls, key)
        if marker is not None and isinstance(val, str):
            val = marker.resolve(val, Path.cwd())
        set_dotted(over, key, val)
    try:
        cfg = model_cls.model_validate(deep_merge(raw, over))
    except ValidationError as exc:
        raise ValueError(one_line(exc, str(p))) from None
    base = p.resolve().parent
    written: dict[str, str] = {}

    def fix(marker: ConfigPath, value: str) -> str:
        resolved = marker.resolve(value, base)
        if resolved != value:
            written[resolved] = value
        return resolved

    walk_paths(cfg, fix)
    if isinstance(cfg, ConfigModel):
        cfg._written = written
    return cfg
