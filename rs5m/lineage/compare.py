"""A version's PUB11 funnel beside RS5M's published one, as stage rates in percent.

Rates, each computed the same way for our rows (``rs5m.lineage.store.funnel_rows``) and RS5M's table
(``rs5m.core.published``), with the denominators RS5M's table allows:
- ``hit rate``       = After Keyword Filtering / Amount (RS5M's Amount is rounded to 2 figures, e.g. 2.3B);
- ``download yield`` = Download Image / After Keyword Filtering;
- ``invalid``        = Invalid Image (Removed) / Download Image;
- ``duplicate``      = Duplicate Image (Removed) / Download Image (as the reference quotes RS5M's rates);
- ``outlier``        = Outlier images (Removed) / (Download Image - Invalid - Duplicate), the post-dedup
  pool the pooled quantiles are taken over;
- ``remain``         = Remain / Download Image.
A rate whose counts are missing (stage not run) or whose denominator is 0 is ``None``. ``compare_funnel``
gives one row per source (and Total) and rate, with the difference in points (ours - RS5M) and a flag
where it is beyond ``flag_points``.
"""

from __future__ import annotations

from typing import Any

from rs5m.core.published import rs5m_table
from rs5m.core.schema import DISPLAY_NAMES

COUNT_COLUMNS = {
    "amount": "Amount",
    "after_keyword": "After Keyword Filtering",
    "downloaded": "Download Image",
    "invalid": "Invalid Image (Removed)",
    "duplicate": "Duplicate Image (Removed)",
    "outlier": "Outlier images (Removed)",
    "remain": "Remain",
}
RATES = ("hit rate", "download yield", "invalid", "duplicate", "outlier", "remain")
DEFAULT_FLAG_POINTS = 10.0
COMPARE_COLUMNS = ["Name", "Rate", "Ours %", "RS5M %", "Diff (points)", "Flag"]


def _published() -> dict[str, Any]:
    return rs5m_table()


def rs5m_pub11() -> list[dict[str, Any]]:
    """RS5M's PUB11 table as funnel rows (``store.FUNNEL_COLUMNS`` keys), sources in table order + Total."""
    data = _published()
    rows = [{"Name": DISPLAY_NAMES.get(k, k), **_counts(v)} for k, v in data["sources"].items()]
    return [*rows, {"Name": "Total", **_counts(data["total"])}]


def _counts(entry: dict[str, Any]) -> dict[str, int]:
    return {col: int(entry[key]) for key, col in COUNT_COLUMNS.items()}


def _pct(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return 100.0 * num / den


def stage_rates(row: dict[str, Any]) -> dict[str, float | None]:
    """The six rates (percent) of one funnel row; ``None`` where a count is missing or a denominator 0."""
    amount, hits, down = row.get("Amount"), row.get("After Keyword Filtering"), row.get("Download Image")
    invalid, dup = row.get("Invalid Image (Removed)"), row.get("Duplicate Image (Removed)")
    outlier, remain = row.get("Outlier images (Removed)"), row.get("Remain")
    pool = None if None in (down, invalid, dup) else down - invalid - dup
    return {
        "hit rate": _pct(hits, amount),
        "download yield": _pct(down, hits),
        "invalid": _pct(invalid, down),
        "duplicate": _pct(dup, down),
        "outlier": _pct(outlier, pool),
        "remain": _pct(remain, down),
    }


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def compare_funnel(
    rows: list[dict[str, Any]],
    flag_points: float = DEFAULT_FLAG_POINTS,
    reference: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Our rates beside RS5M's (``COMPARE_COLUMNS``), one row per funnel row and rate, in ``rows`` order.

    ``Flag`` is ``"!"`` when both rates exist and differ by more than ``flag_points`` percentage points,
    else ``""``. A source absent from the reference (or from ``rows``) has ``None`` on that side.
    """
    if flag_points < 0:
        raise ValueError(f"flag_points must be >= 0, got {flag_points}")
    ref = {r["Name"]: stage_rates(r) for r in (reference if reference is not None else rs5m_pub11())}
    out = []
    for row in rows:
        ours, theirs = stage_rates(row), ref.get(row["Name"], {})
        for rate in RATES:
            a, b = ours[rate], theirs.get(rate)
            diff = None if a is None or b is None else a - b
            flag = "!" if diff is not None and abs(diff) > flag_points else ""
            values = [row["Name"], rate, _round(a), _round(b), _round(diff, 2), flag]
            out.append(dict(zip(COMPARE_COLUMNS, values, strict=True)))
    return out


def flagged(comparison: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a ``compare_funnel`` result that are flagged."""
    return [r for r in comparison if r["Flag"]]
