"""Tokenization throughput of ``fsq-audio tokenize`` on a folder of speech.

Each run is a fresh CLI process (``-f``: start over) under ``/usr/bin/time -v``, so the wall
time includes start-up, audio decoding, resampling, encoding and writing the shards, as a user
sees it. Reports audio seconds per wall second, frames (token vectors) per second and peak RSS,
median of the repeats.

Run::

    python benchmarks/tokenize_cli_speed.py --model pretrained/fsq-speech-16k --threads 1 2 --out runs/bench/tokenize.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEV_DATA_DIR, busy_processes, environment, environment_lines, markdown_table, write_json
from benchmarks.memory import cli_prefix, default_model_dir, measured_run


def audio_seconds(folder: Path) -> tuple[float, int]:
    """Total duration and number of the audio files under ``folder``."""
    from fsq_audio.audio import find_audio_files, info

    files = find_audio_files(folder)
    return sum(info(f).duration for f in files), len(files)


def run_tokenize(data: Path, model: Path, out: Path, threads: int, stages: int | None) -> dict[str, Any]:
    """One ``fsq-audio tokenize`` run from scratch; wall seconds and peak RSS."""
    cmd = cli_prefix() + ["tokenize", str(data), "-o", str(out), "-m", str(model), "-f", "-q",
                          "--threads", str(threads), "--cpu"]
    if stages:
        cmd += ["-s", str(stages)]
    return measured_run(cmd)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA_DIR, help=f"audio folder (default: {DEV_DATA_DIR})")
    parser.add_argument("--model", type=Path, default=None,
                        help="release dir (default: the default architecture with random weights)")
    parser.add_argument("--stages", type=int, default=None, help="residual stages to keep (default: all)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CLI --threads values (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per thread count; the median is reported")
    parser.add_argument("--out", type=Path, default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        print(f"no audio folder at {args.data} (pass --data)", file=sys.stderr)
        return 1
    env = environment()
    seconds, n_files = audio_seconds(args.data)
    records, rows = [], []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = args.model or default_model_dir(tmp)
        from fsq_audio.models.codec import Codec

        frame_rate = Codec.from_pretrained(str(model)).frame_rate
        for threads in args.threads:
            runs = [run_tokenize(args.data, model, tmp / "tokens", threads, args.stages) for _ in range(args.repeats)]
            wall = statistics.median(r["wall_s"] for r in runs)
            rss = max(r["peak_rss_mib"] for r in runs)
            records.append({"threads": threads, "audio_s": seconds, "files": n_files, "median_wall_s": wall,
                            "x_realtime": seconds / wall, "frames_per_s": seconds * frame_rate / wall,
                            "peak_rss_mib": rss, "runs": runs})
            rows.append([threads, seconds / wall, seconds * frame_rate / wall, wall, rss])
            print(f"{threads} thread(s): {seconds / wall:.1f} x real time", file=sys.stderr, flush=True)
    env["busy_processes_end"] = busy_processes()
    print("\n".join(environment_lines(env)))
    print(f"input: {args.data} ({n_files} files, {seconds:.0f} s); model: {args.model or 'default, random weights'}; "
          f"median of {args.repeats} fresh CLI runs (start-up included)\n")
    print(markdown_table(["threads", "x-realtime", "frames/s", "wall (s)", "peak RSS (MiB)"], rows))
    write_json(args.out, {"benchmark": "tokenize_cli_speed", "args": vars(args), "environment": env, "results": records})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
