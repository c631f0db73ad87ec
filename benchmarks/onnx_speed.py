"""Encode / decode speed of the ONNX export (onnxruntime) next to PyTorch, plus their parity.

Exports the model with ``fsq_audio.onnx_export`` into a temporary folder, then times, on the
same clip and thread count, interleaved (PyTorch, onnxruntime, PyTorch, ...):

- encode: ``Codec.encode`` (canonical: one window at a time) vs ``encode_audio`` with one window
  per ``session.run`` and with all windows in one batch;
- decode: ``Codec.decode`` vs ``decode_frames`` (the same windows and context).

Prints wall and process-CPU medians and x-real-time (audio seconds / wall seconds), and the
parity of the outputs. Needs ``pip install 'fsq-audio[onnx]'``. Run::

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/onnx_speed.py --threads 1 --seconds 10 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from benchmarks.common import (add_common_args, environment, environment_lines, load_clip, markdown_table,
                               set_threads, time_wall_cpu, write_json)


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Time each function `repeats` times after `warmup` calls, alternating between them."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time_wall_cpu(fn)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def measure(model: str | None, seconds: float, threads: int, repeats: int, warmup: int, seed: int,
            opset: int) -> dict[str, Any]:
    """Export `model`, then time and compare PyTorch and onnxruntime at `threads` threads."""
    from fsq_audio.models.codec import Codec
    from fsq_audio.onnx_export import decode_frames, encode_audio, export_onnx, frame_audio, session

    set_threads(threads)
    codec = Codec.from_pretrained(model)
    wav, source = load_clip(seconds, codec.sample_rate, seed=seed)
    x = wav[0, 0].numpy()
    with tempfile.TemporaryDirectory() as tmp:
        directory = export_onnx(codec, Path(tmp) / "onnx", opset=opset)
        meta = json.loads((directory / "onnx.json").read_text())
        enc, dec = session(directory / "encoder.onnx", threads), session(directory / "decoder.onnx", threads)
    n_windows = len(frame_audio(x, meta)[0])
    idx = codec.encode(wav)
    fns = {
        ("encode", "pytorch (1 window/call)"): lambda: codec.encode(wav),
        ("encode", "onnxruntime (1 window/call)"): lambda: encode_audio(enc, x, meta, 1),
        ("encode", f"onnxruntime ({n_windows} windows/call)"): lambda: encode_audio(enc, x, meta, n_windows),
        ("decode", "pytorch"): lambda: codec.decode(idx),
        ("decode", "onnxruntime"): lambda: decode_frames(dec, idx[0].numpy(), meta),
    }
    times = interleaved(fns, repeats, warmup)
    onnx_idx = encode_audio(enc, x, meta, n_windows)
    ref_audio = codec.decode(idx)[0, 0].numpy()
    parity = {
        "index_mismatch": float((onnx_idx != idx[0].numpy()).mean()),
        "distinct_stage1_codes": int(np.unique(idx[0, 0].numpy()).size),
        "decode_max_abs_diff": float(np.abs(decode_frames(dec, idx[0].numpy(), meta) - ref_audio).max()),
        "audio_peak": float(np.abs(ref_audio).max()),
    }
    rows = [{"op": op, "runtime": rt, "threads": threads, "seconds": seconds,
             "wall_median_s": statistics.median(t["wall"]), "cpu_median_s": statistics.median(t["cpu"]),
             "xrt": seconds / statistics.median(t["wall"]), "times": t} for (op, rt), t in times.items()]
    return {"model_id": codec.model_id, "clip": source, "rows": rows, "parity": parity}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model name or release directory (default: the shipped model)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default: 10)")
    parser.add_argument("--opset", type=int, default=17)
    add_common_args(parser)
    args = parser.parse_args(argv)
    env = environment()
    results = [measure(args.model, args.seconds, n, args.repeats, args.warmup, args.seed, args.opset)
               for n in args.threads]
    print("\n".join(environment_lines(env)))
    print(f"model {results[0]['model_id']}; clip: {results[0]['clip']}; median of {args.repeats} "
          f"after {args.warmup} warm-up\n")
    rows = []
    for res in results:
        base = {r["op"]: r["wall_median_s"] for r in res["rows"] if r["runtime"].startswith("pytorch")}
        rows += [[r["op"], r["runtime"], r["threads"], r["wall_median_s"], r["cpu_median_s"], r["xrt"],
                  base[r["op"]] / r["wall_median_s"]] for r in res["rows"]]
    print(markdown_table(["op", "runtime", "threads", "wall s", "cpu s", "x real time", "speed-up vs pytorch"], rows))
    print()
    for res in results:
        p = res["parity"]
        print(f"parity: encoder indices differing {p['index_mismatch']:.2%} ({p['distinct_stage1_codes']} distinct "
              f"stage-1 codes); windowed decode max abs diff {p['decode_max_abs_diff']:.2e} "
              f"(audio peak {p['audio_peak']:.3f})")
    write_json(args.out, {"environment": env, "args": {k: str(v) for k, v in vars(args).items()}, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
