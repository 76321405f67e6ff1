"""GeoRSCLIP zero-shot prompts (reference §11.1) and class-name rules.

The 105 templates are 3 image nouns x 35 variants, generated here in the order of the RS5M inference
code so that the per-class embedding sums run in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable

# (article form, bare form) of the three image nouns
IMAGE_NOUNS: tuple[tuple[str, str], ...] = (
    ("a remote sensing image", "remote sensing image"),
    ("an aerial image", "aerial image"),
    ("a satellite image", "satellite image"),
)
QUALITY_ADJECTIVES = (
    "low resolution",
    "bad",
    "cropped",
    "bright",
    "dark",
    "close-up",
    "black and white",
    "jpeg corrupted",
    "blurry",
    "good",
)
OBJECT_ADJECTIVES = ("large", "nice", "small", "weird", "cool")


def georsclip_templates() -> list[str]:
    """The 105 prompt templates (each with one ``{}`` for the class name, ending in ``.``)."""
    out: list[str] = []
    for with_article, bare in IMAGE_NOUNS:
        out += [f"{with_article} of many {{}}.", f"{with_article} of a {{}}.", f"{with_article} of the {{}}."]
        out += [f"{with_article} of the hard to see {{}}.", f"{with_article} of a hard to see {{}}."]
        for adj in QUALITY_ADJECTIVES:
            out += [f"a {adj} {bare} of the {{}}.", f"a {adj} {bare} of a {{}}."]
        for adj in OBJECT_ADJECTIVES:
            out += [f"{with_article} of the {adj} {{}}.", f"{with_article} of a {adj} {{}}."]
    return out


TEMPLATES: tuple[str, ...] = tuple(georsclip_templates())


def class_name(folder: str) -> str:
    """Folder name -> prompt class name: ``_`` and ``/`` become spaces, lower-cased; CamelCase stays fused."""
    return folder.replace("_", " ").replace("/", " ").lower()


def class_names(folders: Iterable[str]) -> list[str]:
    """:func:`class_name` over ``folders`` (keep ImageFolder's sorted order)."""
    return [class_name(f) for f in folders]


def fill(template: str, name: str) -> str:
    """Put ``name`` into ``template`` (``str.replace`` like the reference, not ``format``)."""
    return template.replace("{}", name)
