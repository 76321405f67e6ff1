"""``python -m rs5m.ml.training --config-json FILE``: one rank of a run (what torchrun starts per GPU)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rs5m.config.train import TrainConfig
from rs5m.ml.training.loop import train


def main(argv: list[str] | None = None) -> None:
    """Train the resolved config in ``--config-json`` in this process (rank from torchrun's env)."""
    parser = argparse.ArgumentParser(prog="python -m rs5m.ml.training")
    parser.add_argument("--config-json", type=Path, required=True, help="resolved TrainConfig JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train(TrainConfig.model_validate_json(args.config_json.read_text(encoding="utf-8")))


if __name__ == "__main__":
    main()
