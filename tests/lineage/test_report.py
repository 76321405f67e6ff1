"""The funnel chart of a build fits one screen, whatever the number of sources and stages."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from rs5m.core.schema import DISPLAY_NAMES, SOURCE_ORDER
from rs5m.lineage.report import funnel_chart
from rs5m.lineage.store import FUNNEL_COLUMNS


def _rows() -> list[dict]:
    rows = []
    for i, src in enumerate(SOURCE_ORDER):
        n = 10 ** (9 - i % 5)
        vals = [n, n // 10, n // 20, n // 200, n // 100, n // 50, n // 50]
        rows.append(dict(zip(FUNNEL_COLUMNS, [DISPLAY_NAMES[src], *vals], strict=True)))
    total = {"Name": "Total", **{c: sum(r[c] for r in rows) for c in FUNNEL_COLUMNS[1:]}}
    return [*rows, total]


def test_funnel_chart_of_eleven_sources_fits_one_screen(tmp_path: Path) -> None:
    path = funnel_chart(_rows(), tmp_path / "funnel.png")
    with Image.open(path) as img:
        width, height = img.size
    assert width <= 1280 and height <= 720, (width, height)
    assert path.stat().st_size > 10_000  # drawn, not blank
