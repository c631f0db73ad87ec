"""Token extraction throughput: audio hours tokenized per wall-clock hour, on this CPU.

Times `fsq_audio.tokens.tokenize` in-process, end to end (decode + resample the files, pack
the encode windows of several utterances into batches, run the encoder, write the shards),
on the dev speech folder, per thread count and batch size, next to the naive loop
(`Codec.encode` file by file on torch's intra-op threads, as `fsq-audio compress` does).
tokenize's threads are encoder workers that each run windows on one intra-op thread. The
model is loaded once, outside the timing; `tokenize_cli_speed.py` times the CLI process.

Run from the repository root::

    python benchmarks/tokenize_speed.py --threads 1 2 --out runs/bench/tokenize_speed.json
    python benchmarks/tokenize_speed.py --model pretrained/fsq-speech-16k --batch-seconds 4 8 32
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import (DEV_DATA_DIR, add_common_args, busy_processes, environment, environment_lines,
                               markdown_table, set_threads, write_json)


def build_codec(model: str | None, config: str, seed: int):
    """A release directory's codec, or the `config` architecture ("default"/"tiny") with random weights."""
    from fsq_audio import Codec, CodecConfig

    if model:
        return Codec.from_pretrained(model)
    torch.manual_seed(seed)
    cfg = CodecConfig.tiny() if config == "tiny" else CodecConfig()
    return Codec(cfg).prepare_for_inference()


def run_tokenize(codec, data: Path, batch_seconds: float, threads: int) -> float:
    """Seconds of one complete `tokenize` run into a fresh folder (`threads` encoder workers)."""
    from fsq_audio.tokens import tokenize

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        tokenize(data, Path(tmp) / "tokens", codec, batch_seconds=batch_seconds, threads=threads)
        return time.perf_counter() - start


def run_per_file(codec, rows: list[dict]) -> float:
    """Seconds of the naive loop: read each file and `Codec.encode` it alone."""
    from fsq_audio.tokens.extract import load_utterance

    start = time.perf_counter()
    for row in rows:
        wav = load_utterance(row, codec.sample_rate)
        codec.encode(torch.from_numpy(wav)[None, None])
    return time.perf_counter() - start


def measure(codec, data: Path, threads: int, batches: list[float], repeats: int,
            per_file: bool) -> list[dict[str, Any]]:
    """Median wall time and audio hours per wall hour of each method at one thread count."""
    from fsq_audio.data.manifest import scan_folder
    from fsq_audio.tokens import tokenize

    set_threads(threads)
    rows = scan_folder(data)[0]
    audio_s = sum(float(r["duration"]) for r in rows)
    methods = [(f"tokenize, batch {b:g} s", lambda b=b: run_tokenize(codec, data, b, threads)) for b in batches]
    if per_file:
        methods.append(("Codec.encode per file", lambda: run_per_file(codec, rows)))
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: oneDNN primitive caches, file cache
        tokenize(rows[0]["path"], Path(tmp) / "warm", codec, threads=threads)
    times: dict[str, list[float]] = {name: [] for name, _ in methods}
    for _ in range(repeats):
        for name, fn in methods:  # interleaved, so background load hits every method alike
            times[name].append(fn())
    return [{"threads": threads, "method": name, "files": len(rows), "audio_s": audio_s,
             "median_s": statistics.median(ts), "hours_per_hour": audio_s / statistics.median(ts), "times_s": ts}
            for name, ts in times.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, repeats=1)
    parser.add_argument("--model", help="release directory (default: the default architecture, random weights)")
    parser.add_argument("--config", choices=("default", "tiny"), default="default",
                        help="architecture without --model (tiny: smoke tests)")
    parser.add_argument("--data", type=Path, default=DEV_DATA_DIR, help="folder of speech files (default: the dev set)")
    parser.add_argument("--batch-seconds", type=float, nargs="+", default=[8.0], help="tokenize batch sizes")
    parser.add_argument("--no-per-file", action="store_true", help="skip the Codec.encode-per-file baseline")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"tokenize_speed: {args.data}: no such folder", file=sys.stderr)
        return 1
    codec = build_codec(args.model, args.config, args.seed)
    env = environment()
    records = []
    for threads in args.threads:
        records += measure(codec, args.data, threads, args.batch_seconds, args.repeats, not args.no_per_file)
    env["busy_processes_end"] = busy_processes()
    label = args.model or f"{args.config} architecture, random weights"
    print(f"# Token extraction speed ({label}, {records[0]['files']} files, {records[0]['audio_s'] / 60:.1f} min "
          f"of audio, median of {args.repeats})\n")
    print("\n".join(environment_lines(env)) + "\n")
    print(markdown_table(["threads", "method", "wall s", "audio h / wall h"],
                         [[r["threads"], r["method"], r["median_s"], r["hours_per_hour"]] for r in records]))
    write_json(args.out, {"environment": env, "model": label, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
