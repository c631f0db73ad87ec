"""`fsq-audio lm-train` and `fsq-audio generate`."""

from __future__ import annotations

import argparse
from pathlib import Path

from fsq_audio.errors import ConfigError, FsqAudioError


def add_lm_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="?", help="recipe YAML (recipes/lm_*.yaml); omit with --resume RUN_DIR")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set data.train=[tokens/train] --set model.layers=4")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN_DIR",
                   help="continue the run in run_dir at its last checkpoint (or RUN_DIR's stored config)")
    p.add_argument("--export", metavar="RUN_DIR", help="only export RUN_DIR's latest checkpoint to -o DIR")
    p.add_argument("--checkpoint", help="with --export: this checkpoint directory instead of the latest")
    p.add_argument("-o", "--output", help="with --export: release directory to write")
    p.add_argument("-f", "--force", action="store_true", help="with --export: replace an existing directory")
    p.add_argument("--threads", type=int, default=0, help="CPU threads")


def run_lm_train(args: argparse.Namespace) -> int:
    from fsq_audio.config import from_dict, to_dict
    from fsq_audio.lm.config import LMTrainConfig, load_lm_train_config
    from fsq_audio.lm.train import export_run, load_run_config, train_lm
    from fsq_audio.train.config_io import apply_overrides

    if args.export:
        if not args.output:
            raise ConfigError("--export needs -o DIR")
        print(f"exported {export_run(args.export, args.output, args.checkpoint, args.force)}")
        return 0
    if isinstance(args.resume, str) and not args.recipe:
        stored = to_dict(load_run_config(args.resume))
        config = from_dict(LMTrainConfig, apply_overrides(stored, args.overrides))
    else:
        config = load_lm_train_config(args.recipe, args.overrides)
    if args.threads:
        config.threads = args.threads
    train_lm(config, resume=bool(args.resume))
    return 0


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lm", required=True, help="token LM release directory")
    p.add_argument("-m", "--model", help="codec (default: the installed codec the LM was trained on)")
    p.add_argument("--prompt", help="audio file to continue (default: unconditional)")
    p.add_argument("--prompt-seconds", type=float, default=3.0, help="seconds of the prompt to use (default 3)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each output, prompt included (default 10)")
    p.add_argument("-o", "--output", required=True, help="output .wav (several samples: OUT_0.wav, OUT_1.wav, ...)")
    p.add_argument("-n", "--num-samples", type=int, default=1, help="samples to draw at once (default 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0: greedy)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely values of each symbol (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold per symbol")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--threads", type=int, default=0, help="CPU threads")


def _check_generate_args(args: argparse.Namespace) -> None:
    if args.seconds <= 0 or args.num_samples < 1:
        raise FsqAudioError("--seconds must be > 0 and --num-samples >= 1")
    if not 0 < args.top_p <= 1 or args.top_k < 0 or args.temperature < 0:
        raise FsqAudioError("--top-p must be in (0, 1], --top-k and --temperature >= 0")
    if args.prompt and not 0 < args.prompt_seconds < args.seconds:
        raise FsqAudioError(f"--prompt-seconds must be in (0, --seconds={args.seconds})")


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from fsq_audio import audio
    from fsq_audio.lm.generate import generate_audio, load_codec_for, load_prompt, output_paths
    from fsq_audio.lm.release import load_lm

    _check_generate_args(args)
    outputs = output_paths(args.output, args.num_samples)
    existing = [str(o) for o in outputs if Path(o).exists()]
    if existing and not args.force:
        raise FsqAudioError(f"{existing[0]}: exists (use --force to overwrite)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm, _ = load_lm(args.lm, device)
    codec = load_codec_for(lm, args.model).to(device)
    prompt = load_prompt(codec, args.prompt, args.prompt_seconds, lm.config.num_stages) if args.prompt else None
    wav = generate_audio(lm, codec, args.seconds, args.num_samples, prompt, args.seed,
                         temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    for path, y in zip(outputs, wav.cpu().numpy()):
        audio.save(path, y.clip(-1.0, 1.0), codec.sample_rate)
        print(path)
    return 0
