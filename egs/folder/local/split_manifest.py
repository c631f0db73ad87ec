#!/usr/bin/env python3
"""Stage 0 of egs/folder: hold out validation rows from a manifest.

Splits --manifest into --train and --valid, putting about --valid-count rows in
--valid. Rows are chosen by a hash of their id, so the split is the same on every run
and does not move when files are added elsewhere in the folder.
"""

from __future__ import annotations

import argparse
import sys

from fsq_audio.data import manifest
from fsq_audio.errors import FsqAudioError


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--train", required=True, help="manifest of the remaining rows")
    p.add_argument("--valid", required=True, help="manifest of the held-out rows")
    p.add_argument("--valid-count", type=int, default=100)
    return p


def main() -> int:
    args = get_parser().parse_args()
    try:
        rows = manifest.read_manifest(args.manifest)
        if len(rows) < 2:
            raise FsqAudioError(f"{args.manifest}: {len(rows)} row(s); need at least 2 to hold some out")
        train, valid = manifest.split_rows(rows, args.valid_count)
        manifest.write_manifest(args.train, train)
        manifest.write_manifest(args.valid, valid)
        print(f"train: {len(train)} rows ({manifest.total_hours(train):.2f} h), "
              f"valid: {len(valid)} rows ({manifest.total_hours(valid):.2f} h)", file=sys.stderr)
    except FsqAudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
