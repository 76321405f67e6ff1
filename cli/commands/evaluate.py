"""``rs5m evaluate``: zero-shot, retrieval and SeLo evaluation of one open_clip model (GeoRSCLIP protocol).

rs5m evaluate --config deployments/evaluate-sample.yaml [--checkpoint RS5M_ViT-B-32.pt] [--device cuda]
rs5m evaluate --demo data/eval-demo [--real-data ../shared/data]   # tiny model on generated data
rs5m evaluate --preset georsclip-vitb32 [--preset-dir data/georsclip]  # released checkpoint + test data
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a CLIP model: zero-shot, retrieval, semantic localisation",
        description="Evaluate an open_clip model exactly as GeoRSCLIP does; writes results.{csv,json,md}.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", type=Path, metavar="FILE", help="EvalConfig YAML")
    src.add_argument(
        "--demo", type=Path, metavar="DIR", help="write tiny demo datasets + eval.yaml to DIR, run it"
    )
    src.add_argument(
        "--preset",
        metavar="NAME",
        help="fetch a released GeoRSCLIP checkpoint and the test data (georsclip-vitb32, georsclip-vith14), "
        "evaluate, compare with the published numbers",
    )
    p.add_argument(
        "--real-data", type=Path, metavar="DIR", help="with --demo: real data folder (../shared/data)"
    )
    p.add_argument(
        "--preset-dir",
        type=Path,
        default=Path("data/georsclip"),
        metavar="DIR",
        help="with --preset: where the checkpoint and test data are kept (default data/georsclip)",
    )
    p.add_argument("--model", dest="model_name", metavar="NAME", help="open_clip model name, e.g. ViT-B-32")
    p.add_argument("--pretrained", dest="model_pretrained", metavar="TAG", help="open_clip pretrained tag")
    p.add_argument(
        "--checkpoint", dest="model_checkpoint", metavar="FILE", help="GeoRSCLIP/open_clip state_dict file"
    )
    gelu = p.add_mutually_exclusive_group()
    gelu.add_argument(
        "--quick-gelu",
        dest="model_quick_gelu",
        action="store_const",
        const=True,
        help="build the model with QuickGELU (OpenAI-initialised checkpoints; default: detected)",
    )
    gelu.add_argument(
        "--no-quick-gelu", dest="model_quick_gelu", action="store_const", const=False, help="force plain GELU"
    )
    p.add_argument("--precision", dest="model_precision", choices=["fp32", "fp16", "bf16", "amp"])
    p.add_argument("--label", dest="model_label", metavar="TEXT", help="row name of this model in the table")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda")
    p.add_argument("--batch-size", type=int, metavar="N")
    p.add_argument("--workers", type=int, metavar="N", help="DataLoader worker processes")
    p.add_argument("--output-dir", metavar="DIR", help="where results.{csv,json,md} go")
    p.add_argument("--cache-dir", metavar="DIR", help="embedding cache folder (default <output-dir>/cache)")
    p.add_argument("--no-cache", action="store_true", help="recompute every embedding")
    p.add_argument("--no-published", action="store_true", help="leave the published GeoRSCLIP rows out")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("model_name", "model_pretrained", "model_checkpoint", "model_precision", "model_label")
    keys += ("model_quick_gelu",)
    out: dict[str, Any] = {k: getattr(args, k) for k in keys}
    out.update(device=args.device, batch_size=args.batch_size, workers=args.workers)
    out.update(output_dir=args.output_dir, cache_dir=args.cache_dir)
    if args.no_cache:
        out["use_cache"] = False
    if args.no_published:
        out["compare_published"] = False
    return out


def run(args: argparse.Namespace) -> int:
    """Load (or write, with ``--demo``) the config, evaluate through flow ``evaluate-georsclip`` (as a
    deployment would, ``cli.flowrun``), print the table and the output files."""
    from cli.flowrun import run_flow
    from rs5m.config.evaluate import load_eval_config
    from rs5m.ml.evaluation.report import table_markdown
    from rs5m.ml.models import check_model

    if args.real_data is not None and args.demo is None:
        raise ValueError("--real-data only goes with --demo")
    config = args.config
    if args.demo is not None:
        from rs5m.ml.evaluation.fixtures import write_demo_eval_data

        if args.real_data is not None and not args.real_data.is_dir():
            raise FileNotFoundError(f"real data folder not found: {args.real_data}")
        write_demo_eval_data(args.demo, args.real_data)
        config = args.demo / "eval.yaml"
    if args.preset is not None:
        config = _prepare_preset(args)
    over = _overrides(args)
    cfg = load_eval_config(config, **over)  # a bad config is one line before Prefect starts
    check_model(cfg.model.name, cfg.model.checkpoint)  # so is a bad model name or checkpoint
    out = Path(cfg.output_dir).resolve()
    report = run_flow("evaluate:evaluate_georsclip", out.parent, config=str(config), overrides=over)
    print(table_markdown(report["table"], drop_empty=True), end="")
    for kind, path in report["files"].items():
        print(f"{kind}: {path}")
    if args.preset is not None:
        _print_comparison(args.preset, report["table"][0], Path(cfg.output_dir))
    return 0


def _prepare_preset(args: argparse.Namespace) -> Path:
    """Fetch (or find) the preset's files and write its evaluation config; return the config's path."""
    from cli.main import CliError
    from rs5m.fetch.plan import FetchError
    from rs5m.fetch.progress import make_progress
    from rs5m.ml.evaluation.preset import get_preset, load_presets, write_eval_config
    from rs5m.ml.evaluation.testdata import obtain

    presets = load_presets()
    preset = get_preset(presets, args.preset)
    try:
        ckpt, root = obtain(preset, presets.test_data, args.preset_dir, progress_factory=make_progress)
    except FetchError as exc:
        raise CliError(str(exc)) from exc
    return write_eval_config(presets, args.preset, ckpt, root, args.preset_dir / f"eval-{args.preset}.yaml")


def _print_comparison(name: str, ours: dict[str, Any], out_dir: Path) -> None:
    """Print our headline numbers beside the published ones and save them as comparison.{json,md}."""
    from rs5m.core.io import atomic_path, write_json
    from rs5m.ml.evaluation.preset import compare_published, comparison_markdown, load_presets

    presets = load_presets()
    rows = compare_published(ours, presets, name)
    text = comparison_markdown(rows, presets.tolerance_points)
    print(f"\n{name}: ours vs published (RS5M README)\n{text}", end="")
    write_json(
        out_dir / "comparison.json",
        {"preset": name, "tolerance_points": presets.tolerance_points, "rows": rows},
    )
    with atomic_path(out_dir / "comparison.md") as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(f"comparison: {out_dir / 'comparison.md'}")
