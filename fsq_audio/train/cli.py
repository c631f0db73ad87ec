"""`fsq-audio train` and `fsq-audio export`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="?", help="recipe YAML (recipes/*.yaml); omit to use defaults or with --resume RUN_DIR")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set batch_size=8 --set data.train=[data/]")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                   help="continue the run in run_dir at its last checkpoint (or RUN_DIR's stored config)")
    p.add_argument("--init-from", help="start a new run from an exported release's generator weights")
    p.add_argument("--threads", type=int, default=0, help="CPU threads")


def run_train(args: argparse.Namespace) -> int:
    from fsq_audio.train.config_io import apply_overrides, load_resolved, load_train_config
    from fsq_audio.train.trainer import train

    if isinstance(args.resume, str) and not args.recipe:
        from fsq_audio.config import TrainConfig, from_dict, to_dict

        config = from_dict(TrainConfig, apply_overrides(to_dict(load_resolved(args.resume)), args.overrides))
    else:
        config = load_train_config(args.recipe, args.overrides)
    if args.threads:
        config.threads = args.threads
    train(config, resume=bool(args.resume), init_from=args.init_from)
    return 0


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="training run directory")
    p.add_argument("-o", "--output", required=True, help="release directory to write (e.g. pretrained/NAME)")
    p.add_argument("--checkpoint", help="checkpoint directory (default: the latest)")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator even if an EMA exists")
    p.add_argument("--name", help="model name recorded in the release (default: the config's)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing release directory")


def run_export(args: argparse.Namespace) -> int:
    from fsq_audio.train.export import export_run

    out = export_run(args.run_dir, args.output, args.checkpoint, not args.no_ema, args.name, args.force)
    print(f"exported {out}")
    return 0
