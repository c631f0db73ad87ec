"""What each inference optimisation buys on CPU, and that outputs stay equal within tolerance.

Variants of the default architecture (random weights: speed does not depend on them), timed
interleaved on one clip, median of N after warm-up:

* ``weight-norm live``: the module as built for training (weight norm parametrisations recomputed
  at every call), in eval mode, under
  ``torch.no_grad``;
* ``folded``: `Codec.prepare_for_inference()` (weight norm folded into plain weights, eval mode)
  and ``torch.inference_mode`` (what `Codec.encode` / `decode` use);
* ``folded+compile``: the same, with the encoder and decoder wrapped in ``torch.compile``
  (inductor; needs a C++ compiler; compile time is reported separately).

Encode = encoder + quantizer over the canonical windows, decode = quantizer lookup + decoder
over the decode windows, both exactly as `Codec.encode` / `Codec.decode` do them.

Run::

    python benchmarks/inference_opts.py --seconds 10 --threads 1 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import environment, environment_lines, load_clip, markdown_table, write_json


def build(seed: int = 0):
    from fsq_audio.config import CodecConfig
    from fsq_audio.models.codec import Codec

    torch.manual_seed(seed)
    train_mode = Codec(CodecConfig()).train(False)
    folded = copy.deepcopy(train_mode).prepare_for_inference()
    compiled = copy.deepcopy(folded)
    compiled.encoder = torch.compile(compiled.encoder, dynamic=False)
    compiled.decoder = torch.compile(compiled.decoder, dynamic=False)
    return {"weight-norm live": train_mode, "folded": folded, "folded+compile": compiled}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument("--out", type=Path, help="write the numbers as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    env = environment()
    wav, desc = load_clip(args.seconds)
    wav = wav.view(1, 1, -1)
    models = build()
    if args.no_compile:
        models.pop("folded+compile")
    ref = models["folded"]
    with torch.inference_mode():
        idx = ref.encode(wav)
    ops = {
        "encode": lambda m: m.encode(wav),
        "decode": lambda m: m.decode(idx),
    }
    results: dict[str, dict[str, list[float]]] = {name: {op: [] for op in ops} for name in models}
    compile_s: dict[str, float] = {}
    diffs: dict[str, dict[str, float]] = {}
    for name, model in models.items():  # warm-up (and compilation), then check outputs
        ctx = torch.no_grad() if name == "weight-norm live" else torch.inference_mode()
        with ctx:
            start = time.perf_counter()
            out_idx = model.encode(wav)
            out_wav = model.decode(idx)
            compile_s[name] = time.perf_counter() - start
            ref_wav = ref.decode(idx)
        diffs[name] = {"codes_differing": float((out_idx != idx).float().mean()),
                       "decode_max_abs_diff": float((out_wav - ref_wav).abs().max())}
    for _ in range(args.repeats):  # interleaved: background load hits every variant alike
        for name, model in models.items():
            ctx = torch.no_grad() if name == "weight-norm live" else torch.inference_mode()
            for op, fn in ops.items():
                with ctx:
                    start = time.perf_counter()
                    fn(model)
                    results[name][op].append(time.perf_counter() - start)
    print("\n".join(environment_lines(env)))
    print(f"clip: {args.seconds:g} s ({desc}); {args.threads} thread(s); median of {args.repeats}\n")
    rows = []
    base = {op: statistics.median(results["weight-norm live"][op]) for op in ops}
    for name in models:
        med = {op: statistics.median(results[name][op]) for op in ops}
        rows.append([name, *(f"{args.seconds / med[op]:.1f}" for op in ops),
                     *(f"{base[op] / med[op]:.2f}" for op in ops), f"{compile_s[name]:.1f}",
                     f"{diffs[name]['codes_differing']:.4f}", f"{diffs[name]['decode_max_abs_diff']:.2e}"])
    print(markdown_table(["variant", "encode x-RT", "decode x-RT", "encode speed-up", "decode speed-up",
                          "first call s", "codes differing", "decode max abs diff"], rows))
    write_json(args.out, {"env": env, "args": vars(args) | {"out": str(args.out)}, "times": results,
                          "first_call_s": compile_s, "diffs": diffs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
