"""Peak resident memory of ``fsq-audio compress`` / ``decompress`` on long files.

Each command runs in a fresh subprocess under ``/usr/bin/time -v`` (GNU time; install it with
``apt-get install -y time``), and its "Maximum resident set size" is reported next to the wall
time. Input files are the fixed benchmark clip (dev speech or seeded noise), tiled to length and
written as 16-bit WAV. The 1 s row shows the fixed cost (Python, torch, the model).

Run::

    python benchmarks/memory.py --model pretrained/fsq-speech-16k --durations 1 60 3600 --out runs/bench/memory.json
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import environment, environment_lines, load_clip, markdown_table, write_json

GNU_TIME = "/usr/bin/time"
TARGET_MIB = 1.5 * 1000**3 / 2**20  # the 1-hour budget: 1.5 GB


def cli_prefix() -> list[str]:
    """How to start the CLI: the installed ``fsq-audio`` script, else ``python -m fsq_audio``."""
    exe = shutil.which("fsq-audio")
    return [exe] if exe else [sys.executable, "-m", "fsq_audio"]


def parse_time_v(stderr: str) -> dict[str, float]:
    """Peak RSS (MiB), wall seconds and CPU (user + system) seconds from GNU ``time -v`` output."""
    rss = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", stderr)
    wall = re.search(r"Elapsed \(wall clock\) time.*:\s+([\d:.]+)\s*$", stderr, re.MULTILINE)
    if not rss:
        raise RuntimeError(f"no 'Maximum resident set size' in time -v output:\n{stderr[-2000:]}")
    out = {"peak_rss_mib": int(rss.group(1)) / 1024}
    cpu = [re.search(rf"{kind} time \(seconds\):\s*([\d.]+)", stderr) for kind in ("User", "System")]
    if all(cpu):
        out["cpu_s"] = sum(float(m.group(1)) for m in cpu)
    if wall:  # h:mm:ss or m:ss.ss
        out["wall_s"] = sum(float(v) * 60**i for i, v in enumerate(reversed(wall.group(1).split(":"))))
    return out


def measured_run(args: list[str]) -> dict[str, Any]:
    """Run ``args`` under ``/usr/bin/time -v``; return peak RSS, wall time and the command."""
    if not Path(GNU_TIME).exists():
        raise SystemExit(f"{GNU_TIME} not found: install GNU time (apt-get install -y time)")
    proc = subprocess.run([GNU_TIME, "-v", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-2000:]}")
    return {"command": " ".join(args), **parse_time_v(proc.stderr)}


def write_test_wav(path: Path, seconds: float, sample_rate: int, seed: int) -> None:
    """Write ``seconds`` of the benchmark clip (tiled 60 s blocks) as 16-bit mono WAV, streaming."""
    import soundfile as sf

    block_s = min(60.0, seconds)
    block = load_clip(block_s, sample_rate, seed=seed)[0].view(-1).numpy()
    remaining = int(round(seconds * sample_rate))
    with sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as f:
        while remaining > 0:
            f.write(block[:remaining])
            remaining -= min(remaining, block.shape[0])


def default_model_dir(tmp: Path) -> Path:
    """Save the default architecture with random weights (speed and memory do not depend on them)."""
    from benchmarks.peers import _our_classes

    codec_cls, config_cls = _our_classes()
    codec = codec_cls(getattr(config_cls, "default", config_cls)())
    codec.save_pretrained(str(tmp / "model"))
    return tmp / "model"


def run_one(model: Path, seconds: float, tmp: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Compress then decompress one file of ``seconds``; one record per command."""
    wav, fsqa, out = tmp / f"in_{seconds:g}s.wav", tmp / f"in_{seconds:g}s.fsqa", tmp / f"out_{seconds:g}s.wav"
    write_test_wav(wav, seconds, args.sample_rate, args.seed)
    common = ["-m", str(model), "-f", "-q", "--threads", str(args.threads)]
    rows = []
    for op, cmd in (("compress", [str(wav), "-o", str(fsqa)]), ("decompress", [str(fsqa), "-o", str(out)])):
        rec = measured_run(cli_prefix() + [op, *cmd, *common])
        rec.update(op=op, seconds=seconds, x_realtime=seconds / rec["wall_s"] if rec.get("wall_s") else None,
                   input_bytes=(wav if op == "compress" else fsqa).stat().st_size)
        rows.append(rec)
        print(f"{op} {seconds:g} s: {rec['peak_rss_mib']:.0f} MiB, {rec.get('wall_s', 0):.1f} s",
              file=sys.stderr, flush=True)
    for p in (wav, fsqa, out):
        p.unlink(missing_ok=True)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="release dir (default: the default architecture, random weights, saved to a temp dir)")
    parser.add_argument("--durations", type=float, nargs="+", default=[1.0, 60.0, 3600.0],
                        help="file lengths in seconds (default: 1 60 3600)")
    parser.add_argument("--threads", type=int, default=1, help="--threads passed to the CLI (default: 1)")
    parser.add_argument("--sample-rate", type=int, default=16000, help="rate of the test files (default: 16000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise fallback clip")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the test files (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp_name:
        tmp = Path(tmp_name)
        model = args.model or default_model_dir(tmp)
        records = [rec for s in args.durations for rec in run_one(model, s, tmp, args)]
    env["busy_processes_end"] = environment()["busy_processes"]
    print("\n".join(environment_lines(env)))
    print(f"model: {args.model or 'default architecture, random weights'}; CLI --threads {args.threads}; "
          f"input {args.sample_rate} Hz mono PCM_16; peak RSS from GNU time -v\n")
    rows = [[f"{r['seconds']:g} s", r["op"], r["peak_rss_mib"], "yes" if r["peak_rss_mib"] < TARGET_MIB else "NO",
             r.get("wall_s", float("nan")), r.get("cpu_s", float("nan")), r["x_realtime"] or float("nan")]
            for r in records]
    print(markdown_table(["file", "command", "peak RSS (MiB)", f"< 1.5 GB ({TARGET_MIB:.0f} MiB)", "wall (s)",
                          "CPU s (user+sys)", "x-realtime (wall)"], rows))
    write_json(args.out, {"benchmark": "memory", "args": vars(args), "environment": env,
                          "cli": cli_prefix(), "results": records})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
