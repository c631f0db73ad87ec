"""`fsq-audio eval`: our codec at several stage counts and classic codecs on the same files.

Every utterance is coded by every system in the main process (real files: .fsqa, .opus,
.bit), then scored against its 16 kHz mono reference; scoring can run in a process pool.
Outputs: results.json (per utterance and aggregate), report.md and a self-contained
report.html (see `fsq_audio.eval.report`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsq_audio import __version__, audio
from fsq_audio.errors import AudioError, ConfigError, FsqAudioError
from fsq_audio.eval import metrics
from fsq_audio.eval.baselines import Coded, System, parse_baselines
from fsq_audio.eval.ours import FsqSystem, TokenStats, parse_stages
from fsq_audio.eval.pool import MetricPool
from fsq_audio.eval.stats import aggregate, json_safe
from fsq_audio.fileio import atomic_write_text

RESULTS_FORMAT = "fsq-audio-eval/1"


@dataclass
class Example:
    """Audio kept for the report: a reference and each system's aligned output, shape (T,)."""

    id: str
    ref: np.ndarray
    decoded: dict[str, np.ndarray] = field(default_factory=dict)


def build_systems(codec: Any, stages: str | list[int] | None, baselines: str | list[str] | None
                  ) -> tuple[list[System], list[dict]]:
    """Our codec at each stage count, then the baselines that can run here.

    Returns:
        (systems, skipped): skipped lists {"name", "reason"} for baselines whose programs are absent.
    """
    systems: list[System] = []
    if codec is not None:
        systems += [FsqSystem(codec, n) for n in parse_stages(stages, codec.num_stages)]
    skipped = []
    for system in parse_baselines(baselines):
        reason = system.missing()
        if reason:
            skipped.append({"name": system.name, "reason": reason})
        else:
            systems.append(system)
    return systems, skipped


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]


def _code_record(system: System, row: dict, ref: np.ndarray, duration: float, scratch: Path
                 ) -> tuple[dict, Coded | None]:
    """Round-trip one utterance through one system; failures become an error string."""
    workdir = Path(tempfile.mkdtemp(dir=scratch))
    record: dict[str, Any] = {"duration": duration, "error": None}
    try:
        coded = system.code(Path(row["path"]), ref, workdir)
    except Exception as exc:  # one bad file or codec run must not stop the evaluation
        record["error"] = _error_text(exc)
        return record, None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record.update(
        bits=coded.bits,
        payload_bits=coded.payload_bits,
        kbps=coded.bits / duration / 1000.0,
        kbps_payload=None if coded.payload_bits is None else coded.payload_bits / duration / 1000.0,
        encode_s=coded.encode_s,
        decode_s=coded.decode_s,
        rtf_encode=coded.encode_s / duration,
        rtf_decode=coded.decode_s / duration,
    )
    return record, coded


def _load_reference(row: dict) -> tuple[np.ndarray, float]:
    """(16 kHz mono reference (T,), duration in seconds of the original file)."""
    duration = audio.info(row["path"]).duration
    ref = audio.load(row["path"], sample_rate=metrics.EVAL_SR, mono=True)[0][0]
    if ref.size == 0 or duration <= 0:
        raise AudioError(f"{row['path']}: holds no audio samples")
    return ref, duration


def _token_stats(systems: list[System]) -> dict[str, TokenStats]:
    return {s.name: TokenStats(s.codec.codebook_size, s.codec.frame_rate) for s in systems if isinstance(s, FsqSystem)}


def _run_all(rows: list[dict], systems: list[System], pool: MetricPool, n_examples: int,
             progress: bool) -> tuple[list[dict], dict[str, TokenStats], list[Example]]:
    """Code every row with every system, queueing the scoring; returns utterance entries."""
    from tqdm import tqdm

    tokens, examples, utterances = _token_stats(systems), [], []
    with tempfile.TemporaryDirectory(prefix="fsq-eval-") as scratch:
        for i, row in enumerate(tqdm(rows, desc="eval", unit="file", disable=not progress)):
            entry: dict[str, Any] = {"id": str(row.get("id", i)), "path": str(row["path"]), "error": None,
                                     "systems": {}}
            utterances.append(entry)
            try:
                ref, duration = _load_reference(row)
            except Exception as exc:
                entry["error"] = _error_text(exc)
                continue
            entry["duration"] = duration
            example = Example(entry["id"], ref) if len(examples) < n_examples else None
            for system in systems:
                record, coded = _code_record(system, row, ref, duration, Path(scratch))
                entry["systems"][system.name] = record
                if coded is None:
                    continue
                pool.submit((i, system.name), ref, coded.audio)
                if coded.tokens is not None and system.name in tokens:
                    tokens[system.name].add(coded.tokens)
                if example is not None:
                    example.decoded[system.name] = metrics.align(ref, coded.audio)[0]
            if example is not None:
                examples.append(example)
    return utterances, tokens, examples


def evaluate(codec: Any, rows: list[dict], stages: str | list[int] | None = None,
             baselines: str | list[str] | None = "identity", out_dir: str | Path | None = None, *,
             workers: int = 1, examples: int = 3, progress: bool = True, data_label: str = "") -> dict:
    """Evaluate our codec (if given) and baselines on `rows`; optionally write the report.

    Args:
        codec: a loaded `fsq_audio.Codec`, or None for baselines only.
        rows: manifest rows (`fsq_audio.data.manifest.load_rows`); each needs "path".
        stages: stage counts of our codec, "1,2,4", a list, or None/"all" for all stages.
        baselines: "identity,opus:6,codec2:1200,..." or a list of such names.
        out_dir: folder for results.json, report.md, report.html and figures; None writes nothing.
        workers: processes that compute metrics (1: in this process).
        examples: utterances whose audio and spectrograms the report shows.
        progress: show a tqdm progress bar.
        data_label: where the rows came from (recorded in the results).

    Returns:
        The results dict that results.json holds (NaN written as null).
    """
    systems, skipped = build_systems(codec, stages, baselines)
    if not systems:
        raise ConfigError("nothing to evaluate: no --model and no runnable --baselines")
    notices = [f"{s['name']}: skipped, {s['reason']}" for s in skipped]
    with MetricPool(workers) as pool:
        utterances, tokens, example_audio = _run_all(rows, systems, pool, examples, progress)
        scores = pool.results()
    for i, entry in enumerate(utterances):
        for name, record in entry["systems"].items():
            record.update(scores.get((i, name), {}))
    results = {
        "format": RESULTS_FORMAT,
        "fsq_audio_version": __version__,
        "eval_sample_rate": metrics.EVAL_SR,
        "data": data_label,
        "n_utterances": len(rows),
        "model": _model_info(codec),
        "systems": [_system_summary(s, utterances, tokens) for s in systems],
        "skipped": skipped,
        "notices": notices,
        "utterances": utterances,
    }
    results = json_safe(results)
    if out_dir is not None:
        write_outputs(results, example_audio, Path(out_dir))
    return results


def _system_summary(system: System, utterances: list[dict], tokens: dict[str, TokenStats]) -> dict:
    records = [u["systems"][system.name] for u in utterances if system.name in u["systems"]]
    out = {**system.describe(), "aggregate": aggregate(records)}
    if system.name in tokens:
        out["tokens"] = tokens[system.name].summary()
    return out


def _model_info(codec: Any) -> dict | None:
    if codec is None:
        return None
    return {
        "model_id": codec.model_id, "sample_rate": codec.sample_rate, "frame_rate": codec.frame_rate,
        "codebook_size": codec.codebook_size, "num_stages": codec.num_stages, "bits_per_code": codec.bits_per_code,
    }


def write_outputs(results: dict, examples: list[Example], out_dir: Path) -> None:
    """results.json, report.md, report.html and the figures, into `out_dir`."""
    from fsq_audio.eval.report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=1, allow_nan=False) + "\n")
    write_report(results, examples, out_dir)


def failures(results: dict) -> list[tuple[str, str]]:
    """(utterance id, first error) for every utterance that could not be loaded or coded."""
    out = []
    for u in results["utterances"]:
        errors = [u["error"]] + [f"{name}: {r['error']}" for name, r in u["systems"].items() if r.get("error")]
        first = next((e for e in errors if e), None)
        if first:
            out.append((u["id"], first))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `fsq-audio eval`."""
    parser.add_argument("--model", help="release directory or shipped model name (omit: baselines only)")
    parser.add_argument("--data", required=True, help="audio folder, audio file or JSON-lines manifest")
    parser.add_argument("--stages", default="all", help="stage counts of our codec, e.g. 1,2,4 (default: all)")
    parser.add_argument("--baselines", default="identity",
                        help="comma list: identity, opus:KBPS, codec2:MODE (3200,2400,1600,1400,1300,1200,700C,450), "
                             "g722; 'none' for none (default: identity)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N files")
    parser.add_argument("-o", "--output", required=True, help="report folder (results.json, report.md, report.html)")
    parser.add_argument("--workers", type=int, default=1, help="processes computing metrics (default: 1)")
    parser.add_argument("--examples", type=int, default=3, help="utterances with audio players and spectrograms")
    parser.add_argument("--device", default="cpu", help="torch device of our codec (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing report in the output folder")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run `fsq-audio eval`; returns 0, or 1 if any file failed (results are written anyway)."""
    from fsq_audio.data.manifest import load_rows

    out_dir = Path(args.output)
    if (out_dir / "results.json").exists() and not args.force:
        raise FsqAudioError(f"{out_dir}: holds a report already (use --force to overwrite)")
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    rows = load_rows(args.data)
    if not rows:
        raise AudioError(f"{args.data}: no audio files found")
    rows = rows[: args.limit] if args.limit else rows
    codec = None
    if args.model:
        from fsq_audio import Codec

        codec = Codec.from_pretrained(args.model, device=args.device)
    results = evaluate(codec, rows, args.stages, args.baselines, out_dir, workers=args.workers,
                       examples=args.examples, progress=not args.quiet, data_label=str(args.data))
    for notice in results["notices"]:
        print(f"fsq-audio: notice: {notice}", file=sys.stderr)
    from fsq_audio.eval.report import markdown_table

    print(markdown_table(results))
    print(f"\nreport: {out_dir / 'report.html'}")
    failed = failures(results)
    for uid, err in failed:
        print(f"fsq-audio: failed: {uid}: {err}", file=sys.stderr)
    return 1 if failed else 0
