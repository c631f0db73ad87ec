"""Shared helpers for the benchmark scripts: timing, test clips, environment facts, output.

Nothing here runs at import time. The scripts call :func:`set_threads` themselves and
time everything through :func:`time_call` so every number is "median of N after warm-up".
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEV_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "dev"
BASE_SAMPLE_RATE = 16000


@dataclass
class Timing:
    """Wall-clock seconds of repeated calls of one operation.

    Attributes:
        times: seconds of each timed call (warm-up calls excluded).
    """

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "min_s": self.best, "times_s": list(self.times)}


def set_threads(n: int) -> None:
    """Set torch's intra-op thread count (the knob a CPU user has)."""
    torch.set_num_threads(int(n))


def time_once(fn: Callable[[], Any], inference: bool = True) -> float:
    """Seconds one call of ``fn`` takes, under ``torch.inference_mode`` unless ``inference=False``."""
    with torch.inference_mode(inference):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


def time_wall_cpu(fn: Callable[[], Any], inference: bool = True) -> tuple[float, float]:
    """``(wall seconds, process CPU seconds)`` of one call of ``fn``.

    CPU seconds are much less sensitive to other processes competing for the cores than wall
    seconds, so on a shared machine they bound what the wall time would be on an idle one
    (for one thread; with more threads they add up over threads).
    """
    with torch.inference_mode(inference):
        cpu, start = time.process_time(), time.perf_counter()
        fn()
        return time.perf_counter() - start, time.process_time() - cpu


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> Timing:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls.

    Args:
        fn: zero-argument callable doing the work.
        repeats: number of timed calls.
        warmup: number of untimed calls first (allocator, oneDNN primitive caches).

    Returns:
        A :class:`Timing` with one entry per timed call.
    """
    for _ in range(warmup):
        time_once(fn)
    return Timing([time_once(fn) for _ in range(repeats)])


def _dev_files(data_dir: Path) -> list[Path]:
    exts = {".wav", ".flac", ".ogg", ".mp3"}
    return sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in exts)


@lru_cache(maxsize=4)
def _base_clip(seconds: float, seed: int, data_dir: str | None) -> tuple[np.ndarray, str]:
    frames = int(round(seconds * BASE_SAMPLE_RATE))
    files = _dev_files(Path(data_dir)) if data_dir and Path(data_dir).is_dir() else []
    if files:
        from fsq_audio.audio import load  # the project's loader: resampling, mono mixdown

        parts, total, i = [], 0, 0
        while total < frames:
            x, _ = load(files[i % len(files)], sample_rate=BASE_SAMPLE_RATE, mono=True)
            parts.append(x[0])
            total += x.shape[-1]
            i += 1
        tiled = ", tiled" if i > len(files) else ""
        desc = f"dev speech: first {min(i, len(files))} of {len(files)} files in sorted order, concatenated{tiled}"
        return np.concatenate(parts)[:frames].astype(np.float32), desc
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(frames)).astype(np.float32), f"seeded noise (seed {seed})"


def load_clip(
    seconds: float,
    sample_rate: int = BASE_SAMPLE_RATE,
    seed: int = 0,
    data_dir: Path | str | None = DEV_DATA_DIR,
) -> tuple[torch.Tensor, str]:
    """A fixed test clip: dev speech concatenated in sorted order, else seeded noise.

    Args:
        seconds: clip duration.
        sample_rate: rate wanted; the 16 kHz clip is resampled (soxr) when it differs.
        seed: seed of the noise fallback.
        data_dir: folder of dev audio; None forces the noise clip.

    Returns:
        ``(wav, source)``: float32 tensor ``(1, 1, T)`` with ``T = seconds * sample_rate``
        and a short description of where the audio came from.
    """
    x, source = _base_clip(float(seconds), int(seed), str(data_dir) if data_dir else None)
    if sample_rate != BASE_SAMPLE_RATE:
        import soxr

        x = soxr.resample(x, BASE_SAMPLE_RATE, sample_rate).astype(np.float32)
        x = np.pad(x, (0, max(0, int(round(seconds * sample_rate)) - x.shape[0])))
        x = x[: int(round(seconds * sample_rate))]
    return torch.from_numpy(np.ascontiguousarray(x)).view(1, 1, -1), source


def _run_text(cmd: Sequence[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    """CPU model name as lscpu reports it (falls back to platform.processor())."""
    for line in _run_text(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _short_command(args: str) -> str:
    words = args.split()
    while len(words) > 1 and "python" in Path(words[0]).name:
        words = words[1:]
    if words:
        words[0] = Path(words[0]).name
    return " ".join(words)[:100]


def busy_processes(min_cpu: float = 20.0) -> list[str]:
    """Other processes whose ``ps`` %CPU (average over their lifetime) is at least ``min_cpu``.

    This is how a background training job or other benchmark shows up in a report.
    """
    out = _run_text(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu", "--no-headers"])
    busy = []
    for line in out.splitlines():
        pid, pcpu, args = (line.strip().split(None, 2) + ["", ""])[:3]
        try:
            if int(pid) != os.getpid() and float(pcpu) >= min_cpu:
                busy.append(f"{pcpu}% {_short_command(args)}")
        except ValueError:
            continue
    return busy


def environment() -> dict[str, Any]:
    """Facts that a reader needs to judge a benchmark number."""
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "busy_processes": busy_processes(),
    }


def environment_lines(env: dict[str, Any]) -> list[str]:
    """Human-readable summary of :func:`environment` for the top of a report."""
    lines = [
        f"date: {env['date']}; CPU: {env['cpu']} ({env['cpu_count']} cores); "
        f"torch {env['torch']}; python {env['python']}",
        f"load average at start: {env['load_average']}; other busy processes at start: "
        + ("; ".join(env.get("busy_processes") or []) or "none"),
    ]
    if "busy_processes_end" in env:
        lines.append("other busy processes at end: " + ("; ".join(env["busy_processes_end"]) or "none"))
    return lines


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render a GitHub markdown table; floats get 3 significant-ish digits."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            if v != v:  # NaN
                return "-"
            return f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path | str | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON when ``path`` is given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")


def add_common_args(parser: argparse.ArgumentParser, repeats: int = 5) -> None:
    """Arguments every speed script takes: --threads, --repeats, --warmup, --out."""
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch thread counts to measure (default: 1 2)")
    parser.add_argument("--repeats", type=int, default=repeats,
                        help=f"timed calls per measurement; the median is reported (default: {repeats})")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (default: 1)")
    parser.add_argument("--out", type=Path, default=None, help="also write all raw timings to this JSON file")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and the noise fallback clip")
