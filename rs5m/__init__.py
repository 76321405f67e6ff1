"""rs5m: rebuild the RS5M remote-sensing image-text dataset and train/evaluate GeoRSCLIP.

The library never imports Prefect or dask.distributed; orchestration lives in ``tasks/`` and ``flows/``.
"""

__version__ = "0.1.0"
