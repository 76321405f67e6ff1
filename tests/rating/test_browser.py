"""A real browser rates three pairs with the keyboard; the rows must be in DuckDB.

Headless Debian Chromium (``/usr/bin/chromium``) driven by Playwright; skipped with a message when
either is missing. ``RS5M_RATING_SCREENSHOT=path.png`` also saves the page there (docs/rating.png).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from rs5m.rating.store import RatingStore

CHROMIUM = Path(os.environ.get("RS5M_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANSWERS = [(4, 5, 3), (2, 3, 5), (5, 4, 4)]


@pytest.fixture(scope="module")
def sync_playwright() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set RS5M_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(
            "the playwright package is not installed (pip install playwright; no browser download needed)"
        )
    return sync_playwright


def test_rate_three_pairs_with_the_keyboard(
    sync_playwright: Any, store: RatingStore, live_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, items = live_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(45_000)  # 15 s ran out once with make test's 3 workers on 2 cores
            page.goto(url + "/")
            page.fill("#rater", "tester")
            page.press("#rater", "Enter")
            page.wait_for_selector("body[data-pos='0']")
            for i, scores in enumerate(ANSWERS):
                assert page.inner_text("#caption") == items[i]["caption"]
                for s in scores:
                    page.keyboard.press(str(s))
                page.keyboard.press("Enter")
                page.wait_for_selector(f"body[data-pos='{i + 1}']")
                assert page.inner_text("#progress-text").startswith(f"{i + 1} / {len(items)} done")
            page.keyboard.press("ArrowLeft")
            page.wait_for_selector("body[data-pos='2']")
            chosen = page.get_attribute("#scales .scale[data-scale='relevance'] li.chosen", "data-value")
            assert chosen == str(ANSWERS[2][0])
            page.keyboard.press("1")  # a partial change that is never saved
            _screenshot(page, tmp_path)
            # a reload resumes with the remembered name at the first unrated pair
            page.reload()
            page.wait_for_selector("body[data-pos='3']")
            _mark_missing_image_broken(page, items)
        finally:
            browser.close()
    got = store.call(
        lambda con: con.execute(
            "SELECT uid, relevance, hallucination, fluency FROM ratings "
            "WHERE rater = 'tester' AND broken IS NULL"
        ).fetchall()
    )
    assert sorted(got) == sorted((items[i]["uid"], *ANSWERS[i]) for i in range(3))
    broken = store.call(
        lambda con: con.execute("SELECT broken FROM ratings WHERE uid = 'cc12m-4'").fetchall()
    )
    assert broken == [("image missing",)]


def _mark_missing_image_broken(page: Any, items: list[dict[str, Any]]) -> None:
    """Walk with the arrow keys to the pair whose image is missing; the placeholder shows; ``x`` marks it."""
    target = next(it["pos"] for it in items if it["uid"] == "cc12m-4")
    pos = 3
    while pos != target:
        step = 1 if target > pos else -1
        page.keyboard.press("ArrowRight" if step > 0 else "ArrowLeft")
        pos += step
        page.wait_for_selector(f"body[data-pos='{pos}']")
    assert page.is_visible("#image-placeholder") and not page.is_visible("#pair-image")
    assert "no image for key" in page.inner_text("#image-error")
    page.keyboard.press("x")
    page.wait_for_function("document.getElementById('progress-text').textContent.startsWith('4 / ')")


def _screenshot(page: Any, tmp_path: Path) -> None:
    shot = tmp_path / "rating.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    target = os.environ.get("RS5M_RATING_SCREENSHOT")
    if target:
        shutil.copyfile(shot, target)
