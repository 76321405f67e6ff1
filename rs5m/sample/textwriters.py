"""Writers for the PUB11 sources published as tab-separated text: WIT, YFCC100M/YFCC15M, CC12M, CC3M.

Same contract as ``rs5m.sample.writers``: official file names and layout (reference §2), one line per
planned ``Row`` in order, returns ``(files relative to root, adapter options)``. Fields never contain
tabs, newlines or quotes, so both plain tab-splitting and CSV readers see the same fields; the planted
``malformed_row`` / ``bad_encoding`` lines are the only exceptions (see ``_line``).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import random
from pathlib import Path
from urllib.parse import quote_plus

from rs5m.sample import vocab
from rs5m.sample.captions import Captioner
from rs5m.sample.plan import Row, SourceRows
from rs5m.sample.writers import Result, build_records, row_text


def _line(fields: list[str], r: Row, text_at: int) -> bytes:
    """Encode one TSV line; planted defects: ``malformed_row`` drops the last field (or adds one when the
    line has two), ``bad_encoding`` writes the text field as Latin-1 (invalid UTF-8)."""
    if r.reject == "malformed_row":  # a lost field, a stray extra field, or a lost tab
        fields = fields[:-1] if len(fields) > 2 else [*fields, "extra"] if r.width % 2 else [" ".join(fields)]
    parts = [f.encode("utf-8") for f in fields]
    if r.reject == "bad_encoding":
        parts[text_at] = ("Café " + fields[text_at]).encode("latin-1", "replace")
    return b"\t".join(parts) + b"\n"


WIT_HEADER = (
    "language page_url image_url page_title section_title hierarchical_section_title "
    "caption_reference_description caption_attribution_description caption_alt_text_description "
    "mime_type original_height original_width is_main_image attribution_passes_lang_id "
    "page_changed_recently context_page_description context_section_description"
).split()


def write_wit(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """WIT gzip TSV with header (17 columns); the same caption in reference/alt/attribution fields."""

    def make(i: int, r: Row) -> bytes:
        ref = row_text(cap, r, cap.wiki) or ""
        place = rng.choice(vocab.PLACES)
        page = place.removeprefix("the ").replace(" ", "_")
        section = rng.choice(("", "History", "Geography", "Gallery"))
        attribution = ref if r.lang != "en" or not ref else f"English: {ref}"
        alt = ref if rng.random() < 0.5 else ""
        mime = "image/png" if (r.url or "").endswith(".png") else "image/jpeg"
        fields = [
            r.lang,
            f"https://{r.lang}.wikipedia.org/wiki/{page}",
            r.url or "",
            place,
            section,
            f"{place} / {section}" if section else place,
            ref,
            attribution,
            alt,
            mime,
            str(r.height * 4),
            str(r.width * 4),
            rng.choice(("true", "false")),
            "true",
            rng.choice(("true", "false")),
            f"{place} is a place with a long history and many visitors.",
            "",
        ]
        return _line(fields, r, 6)

    rel = "wit/wit_v1.train.all-00000-of-00010.tsv.gz"
    data = ("\t".join(WIT_HEADER) + "\n").encode() + b"".join(build_records(src, make))
    (root / "wit").mkdir(parents=True, exist_ok=True)
    with open(root / rel, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)
    return [rel], {"language": "en"}


def _flickr_fields(cap: Captioner, r: Row, rng: random.Random, pid: int) -> list[str]:
    if r.reject == "missing_caption":
        title, desc = "", ""
    elif r.kind == "near_miss":
        title, desc = cap.near_miss(), ""
    else:
        title, desc = cap.flickr(r.patterns)
    video = r.reject == "not_an_image"
    uid = f"{rng.randrange(10**7, 10**8)}@N0{rng.randrange(9)}"
    y, mo, d = rng.randint(2004, 2014), rng.randint(1, 12), rng.randint(1, 28)
    geo = rng.random() < 0.5
    lon, lat = (f"{rng.uniform(-120, 140):.6f}", f"{rng.uniform(-40, 60):.6f}") if geo else ("", "")
    server, secret = rng.randrange(1000, 9000), f"{rng.getrandbits(40):010x}"
    return [
        str(pid),
        uid,
        quote_plus(rng.choice(("john smith", "Ana", "photo_fan", "Jörg K."))),
        f"{y}-{mo:02d}-{d:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.0",
        str(1100000000 + rng.randrange(3 * 10**8)),
        quote_plus(rng.choice(("Canon EOS 400D Digital", "NIKON D70", "Apple iPhone 4", ""))),
        quote_plus(title),
        quote_plus(desc),
        ",".join(rng.sample(vocab.TAGS, rng.randint(0, 4))),
        "",
        lon,
        lat,
        "16" if geo else "",
        f"http://www.flickr.com/photos/{uid}/{pid}/",
        r.url or "",
        "Attribution-NonCommercial-ShareAlike License",
        "http://creativecommons.org/licenses/by-nc-sa/2.0/",
        str(server),
        str(rng.randint(1, 9)),
        secret,
        f"{rng.getrandbits(40):010x}",
        "mp4" if video else "jpg",
        "1" if video else "0",
    ]


def write_yfcc(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """YFCC100M Webscope metadata (23 headerless fields, bz2) plus OpenAI's subset id list
    (``line number, photo id, photo hash``; line numbers are 0-based lines of the metadata file).
    Every row is in the subset except the planted ``not_in_subset`` ones."""
    pids = rng.sample(range(10**9, 10**10), len(src.rows))

    def make(i: int, r: Row) -> tuple[int, bytes]:
        return pids[i], _line(_flickr_fields(cap, r, rng, pids[i]), r, 6)

    records = build_records(src, make)
    (root / "yfcc15m").mkdir(parents=True, exist_ok=True)
    meta, subset = "yfcc15m/yfcc100m_dataset-0.bz2", "yfcc15m/yfcc100m_subset_data.tsv"
    (root / meta).write_bytes(bz2.compress(b"".join(line for _, line in records), 9))
    keep = [
        f"{i}\t{pid}\t{hashlib.md5(str(pid).encode()).hexdigest()}\n"
        for i, ((pid, _), r) in enumerate(zip(records, src.rows, strict=True))
        if r.reject != "not_in_subset"
    ]
    (root / subset).write_text("".join(keep), encoding="utf-8")
    return [meta], {"subset_file": subset}


def write_cc12m(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """CC12M ``cc12m.tsv``: headerless ``url<TAB>caption``."""
    lines = build_records(src, lambda i, r: _line([r.url or "", row_text(cap, r, cap.cc12m) or ""], r, 1))
    (root / "cc12m").mkdir(parents=True, exist_ok=True)
    (root / "cc12m/cc12m.tsv").write_bytes(b"".join(lines))
    return ["cc12m/cc12m.tsv"], {}


def write_cc3m(root: Path, src: SourceRows, cap: Captioner, rng: random.Random) -> Result:
    """CC3M ``Train_GCC-training.tsv`` (``caption<TAB>url``) plus the Image Labels subset file
    (``caption, url, labels, MIDs, confidences``) for about 60% of the kept rows."""
    texts = build_records(src, lambda i, r: row_text(cap, r, cap.cc3m) or "")
    lines = [_line([t, r.url or ""], r, 0) for t, r in zip(texts, src.rows, strict=True)]
    labels = []
    for t, r in zip(texts, src.rows, strict=True):
        if r.reject is None and r.copy_of is None and rng.random() < 0.6:
            picked = rng.sample(vocab.LABELS, rng.randint(1, 4))
            confs = sorted((rng.uniform(0.5, 1.0) for _ in picked), reverse=True)
            labels.append(
                "\t".join(
                    [
                        t,
                        r.url or "",
                        ",".join(n for n, _ in picked),
                        ",".join(m for _, m in picked),
                        ",".join(f"{c:.4f}" for c in confs),
                    ]
                )
                + "\n"
            )
    (root / "cc3m").mkdir(parents=True, exist_ok=True)
    (root / "cc3m/Train_GCC-training.tsv").write_bytes(b"".join(lines))
    labels_rel = "cc3m/Image_Labels_Subset_Train_GCC-Labels-training.tsv"
    (root / labels_rel).write_text("".join(labels), encoding="utf-8")
    return ["cc3m/Train_GCC-training.tsv"], {"labels_file": labels_rel}
