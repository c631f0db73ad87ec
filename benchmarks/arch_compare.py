"""Architecture comparison under one CPU training budget: quality reached and inference speed.

Each variant is the base recipe plus `--set` overrides. Every variant trains for the same
wall-clock budget (`--minutes`, on `--threads` CPU threads; `--parallel` runs side by side so
they share the machine's load alike), is stopped with SIGTERM (the trainer saves and exports),
then scored on the same dev clips at stage 1 and at all stages (PESQ-WB, STOI, mel-L1, stage-1
code entropy), and timed on one thread (encode / decode x-real-time of a 10 s clip, median of 5).

Run::

    python benchmarks/arch_compare.py --minutes 8 --parallel 2 -o runs/arch/results.json

Prints a markdown table (kept in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.common import DEV_DATA_DIR, _dev_files, markdown_table, time_call

VARIANTS = {
    "istft-enc8": [],
    "istft-enc16": ["model.encoder_channels=16"],
    "istft-enc32": ["model.encoder_channels=32"],
    "conv-enc8": ["model.decoder=conv"],
}


def train_variant(name: str, overrides: list[str], args: argparse.Namespace) -> subprocess.Popen:
    run_dir = Path(args.runs) / name
    cmd = [sys.executable, "-m", "fsq_audio.cli", "train", args.recipe,
           "--set", f"run_dir={run_dir}", "--set", f"export_dir={run_dir / 'release'}",
           "--set", f"threads={args.threads}", "--set", "valid_every=0", "--set", "export_every=0",
           "--set", "save_every=0", "--set", f"max_steps={args.max_steps}"]
    for o in overrides:
        cmd += ["--set", o]
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir.parent / f"{name}.log", "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})


def train_all(args: argparse.Namespace) -> None:
    """Train the variants `--parallel` at a time, each for `--minutes` of wall time."""
    done = [n for n in args.variants if (Path(args.runs) / n / "release" / "config.json").exists()]
    if done and not args.reuse:
        raise SystemExit(f"{args.runs} already holds trained variants ({', '.join(done)}): "
                         f"pass --reuse to score them again, or remove the folder to retrain")
    pending = [n for n in args.variants if n not in done]
    while pending:
        batch, pending = pending[: args.parallel], pending[args.parallel:]
        procs = {n: train_variant(n, VARIANTS[n], args) for n in batch}
        deadline = time.monotonic() + 60 * args.minutes
        while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
            time.sleep(5)
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # the trainer checkpoints and exports on SIGTERM
        for n, p in procs.items():
            if p.wait() != 0:
                raise SystemExit(f"training {n} failed: see {Path(args.runs) / (n + '.log')}")


def eval_clips(data_dir: str, n: int, seconds: float, sr: int) -> list[np.ndarray]:
    """`n` dev files spread evenly over the sorted list, first `seconds` of each, mono at `sr`."""
    from fsq_audio import audio

    files = _dev_files(Path(data_dir))
    if not files:
        raise SystemExit(f"no audio files under {data_dir}")
    picks = [files[i] for i in np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)]
    return [audio.load(f, sr)[0][0, : int(seconds * sr)] for f in picks]


def score_variant(name: str, args: argparse.Namespace, clips: list[np.ndarray]) -> dict:
    from fsq_audio.eval.metrics import score
    from fsq_audio.models.codec import Codec
    from fsq_audio.quantize.fsq import code_usage
    from fsq_audio.train import checkpoints

    run_dir = Path(args.runs) / name
    codec = Codec.from_pretrained(str(run_dir / "release")).prepare_for_inference()
    last = checkpoints.latest_checkpoint(run_dir)
    steps = checkpoints.read_state(last)["step"] if last is not None else None
    row: dict = {"variant": name, "steps": steps, "params_M": sum(p.numel() for p in codec.parameters()) / 1e6}
    torch.set_num_threads(args.threads)
    for stages in (1, codec.num_stages):
        metrics: dict[str, list[float]] = {}
        codes = []
        for clip in clips:
            x = torch.from_numpy(clip).view(1, 1, -1)
            idx = codec.encode(x, stages)
            codes.append(idx[0, 0])
            y = codec.decode(idx)[0, 0, : len(clip)].numpy()
            for k, v in score(clip, y).items():
                if k in ("pesq_wb", "stoi", "mel_l1") and not math.isnan(v):
                    metrics.setdefault(k, []).append(v)
        for k, v in metrics.items():
            row[f"{k}_s{stages}"] = float(np.mean(v))
        if stages == 1:
            row["code_bits_s1"] = code_usage(torch.cat(codes), codec.codebook_size)["entropy_bits"]
    torch.set_num_threads(1)
    x = torch.from_numpy(np.tile(clips[0], math.ceil(10 * codec.sample_rate / len(clips[0])))[: 10 * codec.sample_rate]).view(1, 1, -1)
    idx = codec.encode(x)
    row["encode_xrt_1t"] = 10.0 / time_call(lambda: codec.encode(x), repeats=5).median
    row["decode_xrt_1t"] = 10.0 / time_call(lambda: codec.decode(idx), repeats=5).median
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="recipes/fsq_speech_16k.yaml")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--minutes", type=float, default=8.0, help="wall-clock training budget per variant")
    p.add_argument("--max-steps", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--runs", default="runs/arch")
    p.add_argument("--data", default=str(DEV_DATA_DIR))
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--reuse", action="store_true", help="score variants already trained in --runs")
    p.add_argument("-o", "--out", default=None, help="write the rows as JSON here")
    args = p.parse_args()
    train_all(args)
    clips = eval_clips(args.data, args.clips, args.seconds, 16000)
    rows = [score_variant(n, args, clips) for n in args.variants]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"minutes": args.minutes, "threads": args.threads,
                                              "parallel": args.parallel, "rows": rows}, indent=2))
    cols = ["variant", "params_M", "steps", "mel_l1_s1", "pesq_wb_s1", "stoi_s1", "code_bits_s1"]
    cols += [k for k in rows[0] if k.endswith(tuple(f"_s{n}" for n in range(2, 65)))]
    cols += ["encode_xrt_1t", "decode_xrt_1t"]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    print(f"budget: {args.minutes} min of training per variant on {args.threads} thread(s), {args.parallel} at a time")
    print(markdown_table(cols, [[fmt(r.get(c, "")) for c in cols] for r in rows]))


if __name__ == "__main__":
    main()
