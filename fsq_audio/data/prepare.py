"""``fsq-audio prepare``: write a JSON-lines manifest of a folder, a LibriSpeech tree or lhotse manifests.

Exit status: 0 when at least one file was readable (unreadable files are skipped, each
named in a warning, and counted at the end); 1 when none was readable, the input is
missing, or ``--strict`` is given and any file was unreadable (no manifest is written then).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fsq_audio.data import librispeech, lhotse_io, manifest
from fsq_audio.errors import FsqAudioError

MAX_WARNINGS = 20


def default_jobs() -> int:
    """Threads for header reads: the CPUs this process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``fsq-audio prepare``."""
    parser.add_argument("source", nargs="?", help="folder of audio files (searched recursively) or one file")
    parser.add_argument("-o", "--output", required=True, help="manifest to write (.jsonl)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--librispeech", metavar="ROOT",
                     help="LibriSpeech tree (a part folder, LibriSpeech/ or its parent); adds speaker and text")
    src.add_argument("--lhotse", metavar="RECORDINGS",
                     help="lhotse recordings manifest (.jsonl or .jsonl.gz); no lhotse install needed")
    parser.add_argument("--parts", nargs="+", default=None,
                        help="with --librispeech: parts to include (default: every part found)")
    parser.add_argument("--supervisions", help="with --lhotse: supervisions manifest (default: the sibling file)")
    parser.add_argument("-j", "--jobs", type=int, default=default_jobs(),
                        help="threads reading audio headers (default: %(default)s)")
    parser.add_argument("--strict", action="store_true", help="fail if any file is unreadable")
    parser.add_argument("--force", action="store_true", help="overwrite an existing manifest")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _librispeech_rows(root: str, parts: list[str] | None, jobs: int, progress: bool):
    """Rows of the requested (or all present) LibriSpeech parts below `root`."""
    if parts is None:
        parts = [p for p in librispeech.PARTS if _has_part(root, p)]
        if not parts:
            raise FsqAudioError(f"{root}: holds none of the LibriSpeech parts {', '.join(librispeech.PARTS)}")
    rows, bad = [], []
    for part in librispeech.check_parts(parts):
        r, b = librispeech.prepare_part(librispeech.find_part(root, part), jobs, progress)
        rows += r
        bad += b
    return rows, bad


def _has_part(root: str, part: str) -> bool:
    try:
        librispeech.find_part(root, part)
        return True
    except FsqAudioError:
        return False


def collect(args: argparse.Namespace) -> tuple[list[dict], list[tuple[str, str]]]:
    """(rows, bad) for the source named by `args` (see add_arguments)."""
    progress = not args.no_progress
    if args.librispeech:
        return _librispeech_rows(args.librispeech, args.parts, args.jobs, progress)
    if args.lhotse:
        return lhotse_io.read_lhotse(args.lhotse, args.supervisions)
    if not args.source:
        raise FsqAudioError("give a folder of audio, --librispeech ROOT or --lhotse RECORDINGS")
    if not Path(args.source).exists():
        raise FsqAudioError(f"{args.source}: no such file or directory")
    return manifest.scan_folder(args.source, jobs=args.jobs, progress=progress)


def report_skipped(bad: list[tuple[str, str]]) -> None:
    """Warn about the first MAX_WARNINGS unreadable inputs on stderr."""
    for path, reason in bad[:MAX_WARNINGS]:
        reason = reason.removeprefix(f"{path}: ")
        print(f"fsq-audio prepare: warning: skipped {path}: {reason}", file=sys.stderr)
    if len(bad) > MAX_WARNINGS:
        print(f"fsq-audio prepare: warning: ... and {len(bad) - MAX_WARNINGS} more", file=sys.stderr)


def check_unique_ids(rows: list[dict]) -> None:
    """Raise FsqAudioError naming the first id shared by two rows (e.g. a.wav and a.flac)."""
    seen: dict[str, str] = {}
    for row in rows:
        if row["id"] in seen:
            raise FsqAudioError(
                f"duplicate id {row['id']!r}: {seen[row['id']]} and {row['path']}; nothing written"
            )
        seen[row["id"]] = row["path"]


def run(args: argparse.Namespace) -> int:
    """Write the manifest; see the module docstring for the exit status."""
    out = Path(args.output)
    if out.exists() and not args.force:
        raise FsqAudioError(f"{out} exists; pass --force to overwrite")
    if args.parts and not args.librispeech:
        raise FsqAudioError("--parts only applies with --librispeech")
    rows, bad = collect(args)
    report_skipped(bad)
    if not rows:
        what = f" ({len(bad)} unreadable)" if bad else ""
        raise FsqAudioError(f"no usable audio found{what}; nothing written to {out}")
    if bad and args.strict:
        raise FsqAudioError(f"{len(bad)} unreadable file(s) and --strict given; nothing written to {out}")
    check_unique_ids(rows)
    manifest.write_manifest(out, rows)
    skipped = f"; skipped {len(bad)} unreadable (see warnings above)" if bad else ""
    print(f"wrote {len(rows)} rows ({manifest.total_hours(rows):.2f} h) to {out}{skipped}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fsq_audio.data.prepare``: the same as ``fsq-audio prepare``."""
    parser = argparse.ArgumentParser(prog="fsq-audio prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except FsqAudioError as exc:
        print(f"fsq-audio: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
