#!/usr/bin/env python3
"""Stage 6 of egs/librispeech: pick prompt utterances for sampling continuations.

Writes "<id> <path>" lines for --num utterances of --manifest whose duration lies in
[--min-duration, --max-duration] seconds, one per speaker, taken in id order (so the
choice is the same on every run).
"""

from __future__ import annotations

import argparse
import sys

from fsq_audio.data import manifest
from fsq_audio.fileio import atomic_write_text
from fsq_audio.errors import FsqAudioError


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--output", required=True, help="text file of '<id> <path>' lines")
    p.add_argument("--num", type=int, default=4)
    p.add_argument("--min-duration", type=float, default=3.0)
    p.add_argument("--max-duration", type=float, default=10.0)
    return p


def main() -> int:
    args = get_parser().parse_args()
    try:
        rows = sorted(manifest.read_manifest(args.manifest), key=lambda r: r["id"])
        picked, speakers = [], set()
        for row in rows:
            spk = row.get("speaker", row["id"])
            if args.min_duration <= row["duration"] <= args.max_duration and spk not in speakers:
                picked.append(row)
                speakers.add(spk)
            if len(picked) == args.num:
                break
        if not picked:
            raise FsqAudioError(f"{args.manifest}: no utterance of {args.min_duration}-{args.max_duration} s")
        atomic_write_text(args.output, "".join(f"{r['id']} {r['path']}\n" for r in picked))
    except FsqAudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
