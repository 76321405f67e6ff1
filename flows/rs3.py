"""Flow ``rs3``: RS3 read -> caption (GPU workers) per partition, PUB11 geometa, geo report.

Called by ``build-rs5m`` as a subflow after the PUB11 subflow (PUB11 geometa reads its keyword
candidates), on the same task runner::

    rs3.with_options(task_runner=task_runner(cfg.dask))(cfg.rs3, str(cfg.version_dir()))

then ``load_lineage`` and ``publish_rs3_funnel`` (tasks/rs3.py) show the RS3 rows. Returns every
stats dict written (read, caption, meta_caption, places).
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from rs5m.config import RS3Config
from rs5m.rs3.pub11 import pub11_partitions
from tasks.rs3 import plan_rs3, pub11_geometa, read_rs3, report_geo, submit_captioning


@flow(name="rs3")
def rs3(cfg: RS3Config, version_dir: str) -> list[dict]:
    """Caption the RS3 datasets and build meta-captions; see the module docstring."""
    logger = get_run_logger()
    parts = plan_rs3(cfg, version_dir)
    logger.info("rs3: %d partitions over %s", len(parts), [s.name for s in cfg.sources])
    reads = [read_rs3.submit(cfg, version_dir, source, part) for source, part in parts]
    captions = submit_captioning(cfg, version_dir, parts, reads)
    pub_parts = pub11_partitions(version_dir, cfg.pub11_stage) if cfg.pub11_meta else []
    geometa = [pub11_geometa.submit(cfg, version_dir, source, part) for source, part in pub_parts]
    results = [f.result() for f in reads] + [f.result() for f in captions]
    results += [s for f in geometa for s in f.result()]
    report_geo(version_dir)
    captioned = sum(r["n_out"] for r in results if r["stage"] == "caption")
    logger.info("rs3: %d images captioned, %d PUB11 partitions with geometa", captioned, len(pub_parts))
    return results
