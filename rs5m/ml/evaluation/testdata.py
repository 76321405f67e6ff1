"""The files of an evaluation preset: fetched from the hub (cached, checked) or found where a user put them.

``<preset dir>/`` mirrors the repo (``ckpt/RS5M_ViT-B-32.pt``, ``data/rs5m_test_data.zip``) and holds the
unzipped test data (``rs5m_test_data/``) plus ``fetch-manifest.json``. The zip is extracted once, into a
temporary folder renamed into place, so a half-extracted tree is never mistaken for the real one.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from rs5m.config.fetch import FetchConfig
from rs5m.fetch.plan import FetchError, FileJob, hub_file_jobs
from rs5m.fetch.run import ProgressFactory, fetch_jobs
from rs5m.ml.evaluation.preset import Preset, TestData


def missing_paths(root: Path, td: TestData) -> list[str]:
    """The test-data paths (relative to ``root``) that do not exist."""
    return [p for p in td.required() if not (root / p).exists()]


def extracted_root(preset_dir: Path, td: TestData) -> Path | None:
    """``<preset dir>/<folder>`` when it holds the whole layout, ``None`` when absent.

    Raises ``ValueError`` when it exists but is incomplete (someone else's folder: not overwritten).
    """
    root = preset_dir / td.folder
    if not root.exists():
        return None
    gone = missing_paths(root, td)
    if gone:
        raise ValueError(
            f"{root} lacks {', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''}: complete it, or delete it "
            f"to have {td.repo_path} extracted there again"
        )
    return root


def _safe_members(zf: zipfile.ZipFile, zip_path: Path) -> None:
    for name in zf.namelist():
        parts = PurePosixPath(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise ValueError(f"{zip_path}: unsafe member {name!r} (outside the folder); not extracting it")


def extract_test_data(zip_path: Path, preset_dir: Path, td: TestData) -> Path:
    """Unzip ``zip_path`` and move its test-data tree to ``<preset dir>/<folder>``; return that folder.

    The tree is found as the zip's ``folder``, its root, or its single top folder, whichever holds the
    layout. Raises ``ValueError`` (one line) for a corrupt zip, unsafe member names or another layout.
    """
    target = preset_dir / td.folder
    tmp = Path(tempfile.mkdtemp(prefix=".unzip-", dir=preset_dir))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                _safe_members(zf, zip_path)
                zf.extractall(tmp)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise ValueError(f"{zip_path}: not a readable zip ({exc}); delete it and rerun") from exc
        candidates = [tmp / td.folder, tmp, *sorted(p for p in tmp.iterdir() if p.is_dir())]
        found = next((c for c in candidates if c.is_dir() and not missing_paths(c, td)), None)
        if found is None:
            gone = missing_paths(tmp / td.folder if (tmp / td.folder).is_dir() else tmp, td)
            raise ValueError(
                f"{zip_path}: not the GeoRSCLIP test-data layout (missing {', '.join(gone[:3])})"
            )
        found.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _offline_message(reason: str, preset: Preset, td: TestData, preset_dir: Path, need: list[str]) -> str:
    page = f"https://huggingface.co/{'datasets/' if preset.repo_type == 'dataset' else ''}{preset.repo_id}"
    sizes = {preset.checkpoint: preset.approx_size, td.repo_path: td.approx_size}
    files = " and ".join(
        f"{page}/resolve/{preset.revision}/{p} ({sizes.get(p, '?')}) at {preset_dir / p}" for p in need
    )
    return (
        f"{reason}. To evaluate offline, download {files}"
        f"{f' (or its unzipped {td.folder}/ at {preset_dir / td.folder})' if td.repo_path in need else ''}, "
        "then rerun the same command"
    )


def _hub_jobs(preset: Preset, need: list[str]) -> list[FileJob]:
    from rs5m.fetch.catalogue import HubPart
    from rs5m.fetch.hub import list_hub_files

    part = HubPart(
        kind="hf_repo",
        repo_id=preset.repo_id,
        repo_type=preset.repo_type,
        revision=preset.revision,
        allow_patterns=need,
    )
    commit, files = list_hub_files(preset.repo_id, part)
    absent = sorted(set(need) - {f.path for f in files})
    if absent:
        raise FetchError(f"{preset.repo_id}@{preset.revision} has no {', '.join(absent)}: fix presets.yaml")
    return hub_file_jobs(preset.repo_id, "", part, commit, files)


def obtain(
    preset: Preset, td: TestData, preset_dir: Path, progress_factory: ProgressFactory | None = None
) -> tuple[Path, Path]:
    """The checkpoint file and the unzipped test-data folder of ``preset``, fetching what is missing.

    Files already recorded in ``<preset dir>/fetch-manifest.json`` are not fetched again; without the
    hub, files already in place are used as they are. Raises ``FetchError`` with one line (for an
    unreachable hub: exactly which files to place where) and ``ValueError`` for a bad zip.
    """
    from rs5m.fetch.hub import HubUnreachable

    preset_dir.mkdir(parents=True, exist_ok=True)
    root = extracted_root(preset_dir, td)
    need = [preset.checkpoint] + ([] if root is not None else [td.repo_path])
    try:
        jobs = _hub_jobs(preset, need)
    except HubUnreachable as exc:
        absent = [p for p in need if not (preset_dir / p).is_file()]
        if absent:
            raise FetchError(_offline_message(str(exc), preset, td, preset_dir, absent)) from exc
        jobs = []
    report = fetch_jobs(FetchConfig(dest=str(preset_dir), workers=2), jobs, progress_factory)
    if report.errors:
        raise FetchError(report.errors[0])
    if root is None:
        root = extract_test_data(preset_dir / td.repo_path, preset_dir, td)
    return preset_dir / preset.checkpoint, root
