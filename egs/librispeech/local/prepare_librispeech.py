#!/usr/bin/env python3
"""Stage 1 of egs/librispeech: JSON-lines manifests of LibriSpeech parts.

Writes <output-dir>/<part>.jsonl with one row per utterance: id, path, duration,
sample_rate, channels, speaker and text (from <spk>-<chapter>.trans.txt). Unreadable
files are skipped with a warning; a part with no readable file is an error.
"""

from __future__ import annotations

import argparse
import sys

from fsq_audio.data import librispeech
from fsq_audio.data.prepare import default_jobs
from fsq_audio.errors import FsqAudioError


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", required=True, help="holds LibriSpeech/<part> or <part> folders")
    p.add_argument("--parts", nargs="+", required=True, choices=librispeech.PARTS)
    p.add_argument("--output-dir", required=True, help="where <part>.jsonl goes")
    p.add_argument("--jobs", type=int, default=default_jobs(), help="threads (default: %(default)s)")
    return p


def main() -> int:
    args = get_parser().parse_args()
    try:
        librispeech.prepare(args.corpus_dir, args.parts, args.output_dir, jobs=args.jobs)
    except FsqAudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
