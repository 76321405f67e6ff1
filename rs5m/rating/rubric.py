"""The three rating scales and their rubric, as shown on the page and used in reports.

Every scale runs 1..5 with 5 the best answer: for ``hallucination`` 5 means nothing is invented.
The scales follow the RS5M rating study (paper App. B11): Relevance & Detail, Hallucination,
Fluency & Conciseness; the level texts are this project's own wording.
"""

from __future__ import annotations

from typing import Any

SCALE_MIN = 1
SCALE_MAX = 5

SCALES: list[dict[str, Any]] = [
    {
        "name": "relevance",
        "title": "Relevance & Detail",
        "question": "Does the caption describe what the image shows, with useful detail?",
        "levels": {
            5: "Describes the scene and its key objects correctly, with specific detail "
            "(land cover, layout, counts).",
            4: "Describes the scene correctly; some details are missing or generic.",
            3: "Gets the kind of scene right but misses or confuses important content.",
            2: "Only a loose or generic link to the image.",
            1: "Unrelated to the image.",
        },
    },
    {
        "name": "hallucination",
        "title": "Hallucination",
        "question": "Does the caption mention things that are not in the image? (5 = nothing invented)",
        "levels": {
            5: "Nothing in the caption is wrong or absent from the image.",
            4: "One minor doubtful detail (an uncertain count, colour or place name).",
            3: "One clearly invented or wrong object or attribute; the rest is right.",
            2: "Several invented or wrong objects, attributes, places or dates.",
            1: "Mostly invented, or describes a different image.",
        },
    },
    {
        "name": "fluency",
        "title": "Fluency & Conciseness",
        "question": "Is the caption well-formed English, without padding?",
        "levels": {
            5: "Grammatical, natural and concise.",
            4: "Minor grammar or wording problems, or slightly wordy.",
            3: "Understandable but awkward, repetitive or padded with boilerplate.",
            2: "Hard to read: broken grammar, fragments or heavy repetition.",
            1: "Not readable text (garbled, keyword lists, markup).",
        },
    },
]

SCALE_NAMES: list[str] = [s["name"] for s in SCALES]
SCALE_TITLES: dict[str, str] = {s["name"]: s["title"] for s in SCALES}

BROKEN_REASONS: list[str] = [
    "image missing",
    "image corrupt or blank",
    "not a photo (text, logo, chart)",
    "caption missing or empty",
    "other",
]

SHORTCUTS: list[tuple[str, str]] = [
    ("1-5", "score the highlighted scale, then move to the next scale"),
    ("Up / Down", "choose the scale to score"),
    ("Enter or n", "save and go to the next unrated pair"),
    ("Left or b", "back to the previous pair"),
    ("Right", "next pair without saving"),
    ("s", "skip this pair for now"),
    ("x", "mark the pair broken (reason from the list)"),
]


def rubric_payload() -> dict[str, Any]:
    """The rubric as JSON for the page: scales (levels keyed by str), broken reasons and shortcuts."""
    scales = [{**s, "levels": {str(k): v for k, v in s["levels"].items()}} for s in SCALES]
    return {
        "scales": scales,
        "min": SCALE_MIN,
        "max": SCALE_MAX,
        "broken_reasons": BROKEN_REASONS,
        "shortcuts": [{"keys": k, "action": a} for k, a in SHORTCUTS],
    }
