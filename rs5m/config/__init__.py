"""Every typed config of the project, at the bottom floor: stage code imports its knobs from here.

``rs5m.config`` re-exports the build config and every stage config (no torch import). The ML configs
(training, evaluation, captioner fine-tuning) live in ``rs5m.config.train``, ``.evaluate`` and
``.captioner``; every YAML file is read by ``rs5m.config.loader`` with one rule for relative paths.
"""

from rs5m.config.build import (
    BuildConfig,
    DaskConfig,
    IngestConfig,
    KeywordConfig,
    SampleServerConfig,
    SourceInput,
    load_build_config,
)
from rs5m.config.package import LAYOUTS, Layout, PackageConfig
from rs5m.config.rs3 import RS3Config
from rs5m.config.stages import (
    DedupConfig,
    DetectorConfig,
    DownloadConfig,
    OutlierConfig,
    ScoringConfig,
    ValidityConfig,
)

__all__ = [
    "LAYOUTS",
    "BuildConfig",
    "DaskConfig",
    "DedupConfig",
    "DetectorConfig",
    "DownloadConfig",
    "IngestConfig",
    "KeywordConfig",
    "Layout",
    "OutlierConfig",
    "PackageConfig",
    "RS3Config",
    "SampleServerConfig",
    "ScoringConfig",
    "SourceInput",
    "ValidityConfig",
    "load_build_config",
]
