"""Human rating of image-text pairs: a stratified sample of a version, a local web page, reports.

- ``sampling``: which pairs (kept set, filter audits, RS3), drawn once per spec; ``locate`` and
  ``images``: where each pair's image is and how it is served (never by a client-given path).
- ``store`` / ``sessions``: ratings in the lineage DuckDB file through one writer thread; stored
  samples and per-rater progress (resume).
- ``app``: the FastAPI app and its static page (``static/``, no build step); ``rubric``: the scales.
- ``report`` / ``agreement``: B11-style means and std, Fleiss'/Cohen's kappa, audit shares, CSV.

The CLI is ``rs5m rate`` (``cli/commands/rate.py``); see ``docs/rating.md``.
"""
