"""FSQ throughput: ``fsq_audio.FSQ`` next to vector-quantize-pytorch's ``FSQ``, in one run.

Three operations, on the same random latents and the same levels:

* ``quantise+index``: latents -> (codes, indices). Ours: ``FSQ.quantize``; theirs: the module
  call (``return_indices=True``, no projections since ``dim == len(levels)``).
* ``indices_to_codes``: indices -> normalised codes.
* ``train fwd+bwd``: codes = FSQ(z) with gradients, then ``codes.sum().backward()``
  (theirs built with ``return_indices=False``, as it is used inside a training graph).

Ours is channel-first ``(B, D, F)`` as in the codec; theirs is timed in its native
channel-last layout ``(B, F, D)`` and with ``channel_first=True`` on ``(B, D, F)``.
Throughput is in million latent vectors per wall second (and per process CPU second, which
other load on the machine disturbs less); ratios are ours / theirs (>1: ours faster).

Run::

    .venv-bench/bin/python benchmarks/fsq_speed.py --threads 1 2 --repeats 20 --out runs/bench/fsq_speed.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import (add_common_args, environment, environment_lines, markdown_table,
                               set_threads, time_wall_cpu, write_json)

OPS = ("quantise+index", "indices_to_codes", "train fwd+bwd")
OURS = "fsq_audio.FSQ (B, D, F)"
THEIRS = "vq-pytorch FSQ (B, F, D)"
THEIRS_CF = "vq-pytorch FSQ channel_first (B, D, F)"


def _train_step(fsq: Callable[[torch.Tensor], Any], z: torch.Tensor) -> None:
    leaf = z.detach().clone().requires_grad_(True)
    out = fsq(leaf)
    (out[0] if isinstance(out, tuple) else out).sum().backward()


def contenders(levels: list[int], batch: int, frames: int, seed: int) -> tuple[dict, dict[str, Any]]:
    """Callables per contender and op, plus facts (index agreement) about the inputs.

    Returns:
        ``({name: {op: fn}}, info)``; vector-quantize-pytorch entries are absent when it
        is not installed.
    """
    from fsq_audio.quantize import FSQ

    gen = torch.Generator().manual_seed(seed)
    z_cf = 2.0 * torch.randn(batch, len(levels), frames, generator=gen)  # (B, D, F)
    z_cl = z_cf.transpose(1, 2).contiguous()  # (B, F, D)
    ours = FSQ(levels)
    with torch.inference_mode():
        idx = ours.quantize(z_cf)[1]
    table = {OURS: {
        "quantise+index": lambda: ours.quantize(z_cf),
        "indices_to_codes": lambda: ours.indices_to_codes(idx),
        "train fwd+bwd": lambda: _train_step(ours, z_cf),
    }}
    info: dict[str, Any] = {"vectors": batch * frames, "codebook_size": ours.codebook_size}
    try:
        from vector_quantize_pytorch import FSQ as VqFSQ  # noqa: N811
    except ImportError as exc:
        print(f"skipping vector-quantize-pytorch: {exc}", file=sys.stderr)
        return table, info
    vq, vq_cf = VqFSQ(levels), VqFSQ(levels, channel_first=True)
    vq_train = VqFSQ(levels, return_indices=False)
    idx32 = idx.to(torch.int32)
    table[THEIRS] = {
        "quantise+index": lambda: vq(z_cl),
        "indices_to_codes": lambda: vq.indices_to_codes(idx32),
        "train fwd+bwd": lambda: _train_step(vq_train, z_cl),
    }
    table[THEIRS_CF] = {
        "quantise+index": lambda: vq_cf(z_cf),
        "indices_to_codes": lambda: vq_cf.indices_to_codes(idx32),
    }
    with torch.inference_mode():
        info["indices_agree"] = float((vq(z_cl)[1].long() == idx).float().mean())
        info["codes_max_abs_diff"] = float((vq.indices_to_codes(idx32).transpose(1, 2) - ours.indices_to_codes(idx)).abs().max())
    return table, info


def measure(table: dict, threads: int, repeats: int, warmup: int) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Interleaved timing: each repeat runs every contender's op once in turn.

    Returns:
        ``{(implementation, op): [(wall s, CPU s), ...]}``.
    """
    set_threads(threads)
    jobs = [(name, op, fn) for name, ops in table.items() for op, fn in ops.items()]
    for _ in range(warmup):
        for _, op, fn in jobs:
            time_wall_cpu(fn, inference=op != "train fwd+bwd")
    times: dict[tuple[str, str], list[tuple[float, float]]] = {(n, op): [] for n, op, _ in jobs}
    for _ in range(repeats):
        for name, op, fn in jobs:
            times[(name, op)].append(time_wall_cpu(fn, inference=op != "train fwd+bwd"))
    return times


def _ratio_rows(levels: list[int], threads: int, rate: dict) -> list[list[Any]]:
    rows = []
    for op in OPS:
        if (THEIRS, op, "wall") in rate:
            rows.append([str(levels), threads, op] + [
                rate[(OURS, op, kind)] / rate.get((other, op, kind), float("nan"))
                for kind in ("wall", "cpu") for other in (THEIRS, THEIRS_CF)])
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, repeats=20)
    parser.add_argument("--levels", type=str, nargs="+", default=["8,8,8,5,5,5", "8,5,5,5"],
                        help="comma-separated FSQ levels, one set per argument")
    parser.add_argument("--batch", type=int, default=16, help="batch size B (default: 16)")
    parser.add_argument("--frames", type=int, default=4096, help="frames F per item (default: 4096)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    env = environment()
    rows, ratio_rows, records = [], [], []
    for spec in args.levels:
        levels = [int(v) for v in spec.split(",")]
        table, info = contenders(levels, args.batch, args.frames, args.seed)
        for threads in args.threads:
            times = measure(table, threads, args.repeats, args.warmup)
            rate = {}
            for (name, op), ts in times.items():
                wall, cpu = [t[0] for t in ts], [t[1] for t in ts]
                rate[(name, op, "wall")] = info["vectors"] / statistics.median(wall) / 1e6
                rate[(name, op, "cpu")] = info["vectors"] / statistics.median(cpu) / 1e6
                rows.append([str(levels), threads, name, op, rate[(name, op, "wall")], rate[(name, op, "cpu")]])
                records.append({"levels": levels, "threads": threads, "impl": name, "op": op,
                                "median_s": statistics.median(wall), "mvectors_per_s": rate[(name, op, "wall")],
                                "mvectors_per_cpu_s": rate[(name, op, "cpu")], "times_s": wall, "cpu_s": cpu,
                                **info})
            ratio_rows += _ratio_rows(levels, threads, rate)
        print(f"levels {levels}: {info}", file=sys.stderr)
    env["busy_processes_end"] = environment()["busy_processes"]
    print("\n".join(environment_lines(env)))
    print(f"{args.batch} x {args.frames} latent vectors per call; median of {args.repeats} after "
          f"{args.warmup} warm-up, implementations interleaved\n")
    print(markdown_table(["levels", "threads", "implementation", "op", "M vectors/s", "M vectors/CPU-s"], rows))
    if ratio_rows:
        print()
        print(markdown_table(["levels", "threads", "op", "ours / vq (wall)", "ours / vq channel_first (wall)",
                              "ours / vq (CPU)", "ours / vq channel_first (CPU)"], ratio_rows))
    write_json(args.out, {"benchmark": "fsq_speed", "args": vars(args), "environment": env, "results": records})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
