"""Training step throughput of the codec trainer (``fsq_audio.train.step.train_step``).

Builds the generator, discriminator, optimisers and losses the way ``fsq_audio.train.trainer``
does for a recipe, then times full steps on fixed batches of the benchmark clip, in two phases:
``spectral`` (before ``adversarial_start``: generator and spectral losses only) and
``adversarial`` (discriminator update, then generator with GAN and feature losses).
No data loading, validation, EMA or checkpointing is included.

Run::

    python benchmarks/train_speed.py --recipe recipes/fsq_speech_16k.yaml --threads 1 2 --repeats 5 \\
        --out runs/bench/train_speed.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import (add_common_args, busy_processes, environment, environment_lines, load_clip,
                               markdown_table, set_threads, time_wall_cpu, write_json)


def build_state(config: Any) -> Any:
    """A ``TrainState`` on CPU as the trainer builds it (without data, EMA or resume)."""
    from accelerate import Accelerator

    from fsq_audio.models.codec import Codec
    from fsq_audio.models.discriminators import Discriminator
    from fsq_audio.train.schedule import lr_lambda
    from fsq_audio.train.step import TrainState, build_losses

    acc = Accelerator(mixed_precision="no", cpu=True, step_scheduler_with_optimizer=False)
    gen, disc = Codec(config.model), Discriminator(config.loss)
    opt_g = torch.optim.AdamW(gen.parameters(), config.lr, betas=tuple(config.betas))
    opt_d = torch.optim.AdamW(disc.parameters(), config.lr_disc, betas=tuple(config.betas))
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, lr_lambda(config))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lr_lambda(config))
    gen, disc, opt_g, opt_d, sched_g, sched_d = acc.prepare(gen, disc, opt_g, opt_d, sched_g, sched_d)
    mel_loss, stft_loss = build_losses(config)
    return TrainState(config, acc, gen, disc, opt_g, opt_d, sched_g, sched_d, mel_loss, stft_loss)


def make_batch(config: Any, seed: int) -> torch.Tensor:
    """``(batch_size, 1, segment)`` crops of the benchmark clip, peak-normalised."""
    seg = int(round(config.data.segment_seconds * config.model.sample_rate))
    clip = load_clip(config.batch_size * config.data.segment_seconds, config.model.sample_rate, seed=seed)[0]
    batch = clip.view(config.batch_size, 1, seg)
    return 0.95 * batch / batch.abs().amax(dim=-1, keepdim=True).clamp_min(1e-4)


def time_phase(state: Any, batch: torch.Tensor, step: int, repeats: int, warmup: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of ``repeats`` training steps at ``step`` (which picks the phase)."""
    from fsq_audio.train.step import train_step

    for _ in range(warmup):
        time_wall_cpu(lambda: train_step(state, batch, step), inference=False)
    return [time_wall_cpu(lambda: train_step(state, batch, step), inference=False) for _ in range(repeats)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--recipe", type=Path, default=Path("recipes/fsq_speech_16k.yaml"),
                        help="recipe YAML (default: recipes/fsq_speech_16k.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="recipe override key=value (repeatable), e.g. --set batch_size=4")
    parser.add_argument("--phases", nargs="+", choices=("spectral", "adversarial"),
                        default=["spectral", "adversarial"], help="phases to time (default: both)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from fsq_audio.train.config_io import load_train_config

    args = parse_args(argv)
    config = load_train_config(args.recipe, args.overrides)
    env = environment()
    torch.manual_seed(args.seed)
    state, batch = build_state(config), make_batch(config, args.seed)
    audio_s = config.batch_size * config.data.segment_seconds
    records, rows = [], []
    for threads in args.threads:
        set_threads(threads)
        for phase in args.phases:
            config.adversarial_start = 10**9 if phase == "spectral" else 0
            times = time_phase(state, batch, 1, args.repeats, args.warmup)
            wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
            records.append({"threads": threads, "phase": phase, "median_s": wall, "median_cpu_s": cpu,
                            "steps_per_s": 1 / wall, "audio_s_per_s": audio_s / wall, "times": times})
            rows.append([threads, phase, 1 / wall, audio_s / wall, wall, cpu])
            print(f"{threads} thread(s), {phase}: {wall:.2f} s/step", file=sys.stderr, flush=True)
    env["busy_processes_end"] = busy_processes()
    print("\n".join(environment_lines(env)))
    params = sum(p.numel() for p in state.generator.parameters()) / 1e6
    dparams = sum(p.numel() for p in state.discriminator.parameters()) / 1e6
    print(f"recipe: {args.recipe} {' '.join(args.overrides)}; generator {params:.1f} M, discriminator "
          f"{dparams:.1f} M params; batch {config.batch_size} x {config.data.segment_seconds:g} s; fp32 CPU; "
          f"median of {args.repeats} steps after {args.warmup} warm-up\n")
    print(markdown_table(["threads", "phase", "steps/s", "audio s trained / s", "wall s/step", "CPU s/step"], rows))
    write_json(args.out, {"benchmark": "train_speed", "args": vars(args), "environment": env, "results": records})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
