"""Encode / decode speed of our codec next to EnCodec 24 kHz and DAC 16 kHz, in one run.

Reports x-real-time (RTF here = audio seconds / wall seconds, higher is faster) per model,
clip length and torch thread count, plus the ratios ours / peer. The models are timed
interleaved (ours, EnCodec, DAC, ours, ...) so that background load hits all of them alike.

Run (peers need ``benchmarks/setup_peers.sh`` first)::

    .venv-bench/bin/python benchmarks/codec_speed.py --threads 1 2 --repeats 5 --out runs/bench/codec_speed.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import peers
from benchmarks.common import (add_common_args, busy_processes, environment, environment_lines, load_clip,
                               markdown_table, set_threads, time_wall_cpu, write_json)
from benchmarks.peers import CodecRunner

MODELS = ("ours", "encodec", "dac")


def build_runners(names: list[str], model_dir: Path | None, stages: int | None,
                  config: str = "default") -> list[CodecRunner]:
    """Build the requested codecs, skipping (with a message) any that cannot be imported."""
    factories = {
        "ours": lambda: peers.ours(model_dir, stages, config),
        "encodec": peers.encodec_24khz,
        "dac": peers.dac_16khz,
    }
    runners = []
    for name in names:
        try:
            runners.append(factories[name]())
        except (ImportError, AttributeError) as exc:
            print(f"skipping {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return runners


def measure(runners: list[CodecRunner], seconds: float, threads: int, repeats: int,
            warmup: int, seed: int) -> list[dict[str, Any]]:
    """Time encode and decode of every runner on one clip, interleaved across runners.

    Returns:
        One record per (runner, op) with raw wall and CPU times, medians and x-real-time.
    """
    set_threads(threads)
    clips = {r.name: load_clip(seconds, r.sample_rate, seed=seed) for r in runners}
    codes = {}
    with torch.inference_mode():  # warm-up; also produces the codes that decode is timed on
        for r in runners:
            for _ in range(max(1, warmup)):
                codes[r.name] = r.encode(clips[r.name][0])
                r.decode(codes[r.name])
    jobs = [(r.name, "encode", lambda r=r: r.encode(clips[r.name][0])) for r in runners]
    jobs += [(r.name, "decode", lambda r=r: r.decode(codes[r.name])) for r in runners]
    jobs.sort(key=lambda job: [r.name for r in runners].index(job[0]))  # ours enc, ours dec, peer enc, ...
    wall: dict[tuple[str, str], list[float]] = {(n, op): [] for n, op, _ in jobs}
    cpu: dict[tuple[str, str], list[float]] = {(n, op): [] for n, op, _ in jobs}
    for _ in range(repeats):
        for name, op, fn in jobs:
            w, c = time_wall_cpu(fn)
            wall[(name, op)].append(w)
            cpu[(name, op)].append(c)
    return [{"model": name, "op": op, "seconds": seconds, "threads": threads, "clip": clips[name][1],
             "median_s": statistics.median(wall[key]), "x_realtime": seconds / statistics.median(wall[key]),
             "best_x_realtime": seconds / min(wall[key]), "cpu_x_realtime": seconds / statistics.median(cpu[key]),
             "times_s": wall[key], "cpu_s": cpu[key]}
            for key in wall for name, op in [key]]


def _get(records: list[dict[str, Any]], model: str, op: str, seconds: float, threads: int,
         field: str = "x_realtime") -> float:
    for rec in records:
        if (rec["model"], rec["op"], rec["seconds"], rec["threads"]) == (model, op, seconds, threads):
            return rec[field]
    return float("nan")


def tables(runners: list[CodecRunner], records: list[dict[str, Any]],
           durations: list[float], threads: list[int]) -> str:
    """The speed table and, when our codec ran, the ours/peer ratio table."""
    rows = []
    for s in durations:
        for t in threads:
            for r in runners:
                rows.append([r.name, f"{r.kbps:.2f}", f"{r.params / 1e6:.1f}", f"{s:g} s", t]
                            + [_get(records, r.name, op, s, t, f) for f in ("x_realtime", "best_x_realtime",
                                                                         "cpu_x_realtime")
                               for op in ("encode", "decode")])
    out = [markdown_table(["model", "kbps", "params (M)", "clip", "threads", "encode x-RT", "decode x-RT",
                           "encode best", "decode best", "encode per CPU-s", "decode per CPU-s"], rows)]
    mine = [r for r in runners if r.name.startswith("fsq_audio")]
    others = [r for r in runners if not r.name.startswith("fsq_audio")]
    if mine and others:
        ratio_rows = []
        for s in durations:
            for t in threads:
                for p in others:
                    ratio_rows.append([f"{mine[0].name} / {p.name}", f"{s:g} s", t] + [
                        _get(records, mine[0].name, op, s, t, f) / _get(records, p.name, op, s, t, f)
                        for f in ("x_realtime", "cpu_x_realtime") for op in ("encode", "decode")])
        out.append(markdown_table(["ratio ours / theirs (>1: ours faster)", "clip", "threads", "encode (wall)",
                                   "decode (wall)", "encode (CPU)", "decode (CPU)"], ratio_rows))
    return "\n\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="codecs to time (default: all that import)")
    parser.add_argument("--model", type=Path, default=None,
                        help="our release dir for Codec.from_pretrained (default: random CodecConfig.default())")
    parser.add_argument("--config", choices=("default", "tiny"), default="default",
                        help="our architecture when --model is not given (tiny: smoke tests only)")
    parser.add_argument("--stages", type=int, default=None, help="our residual FSQ stages (default: all)")
    parser.add_argument("--durations", type=float, nargs="+", default=[10.0, 60.0],
                        help="clip lengths in seconds (default: 10 60)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.nn.utils.weight_norm in peers
    env = environment()
    runners = build_runners(args.models, args.model, args.stages, args.config)
    if not runners:
        print("nothing to measure", file=sys.stderr)
        return 1
    models = [{k: v for k, v in vars(r).items() if not callable(v)} for r in runners]
    records = []
    for seconds in args.durations:
        for threads in args.threads:
            records += measure(runners, seconds, threads, args.repeats, args.warmup, args.seed)
            print(f"done: {seconds:g} s clip, {threads} thread(s); busy: {busy_processes()}", file=sys.stderr)
            print(tables(runners, records, [seconds], [threads]), file=sys.stderr, flush=True)
            write_json(args.out, {"benchmark": "codec_speed", "args": vars(args), "environment": env,
                                  "models": models, "results": records, "complete": False})
    env["busy_processes_end"] = busy_processes()
    print("\n".join(environment_lines(env)))
    print(f"clip: {records[0]['clip']}; wall-time median of {args.repeats} after {args.warmup} warm-up, "
          "models interleaved. x-RT = audio s / wall s (higher is faster); best = from the fastest "
          "repeat; per CPU-s = audio s / process CPU s (less sensitive to other load)\n")
    print(tables(runners, records, args.durations, args.threads))
    write_json(args.out, {"benchmark": "codec_speed", "args": vars(args), "environment": env,
                          "models": models, "results": records, "complete": True})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
