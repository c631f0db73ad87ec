#!/usr/bin/env python3
"""Stage 0 of egs/librispeech: download, verify (md5) and extract LibriSpeech parts.

Fetches <mirror>/<part>.tar.gz into --dl-dir (resuming partial downloads), checks it
against OpenSLR's published md5 (or --md5-file), and extracts it to
<dl-dir>/LibriSpeech/<part>. Parts already extracted are skipped. With --data-dir,
nothing is downloaded: the parts are only looked up in that existing copy.
"""

from __future__ import annotations

import argparse
import logging
import sys

from fsq_audio.data import download, librispeech
from fsq_audio.errors import FsqAudioError


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", required=True, choices=librispeech.PARTS)
    p.add_argument("--dl-dir", help="where archives and the extracted LibriSpeech/ go")
    p.add_argument("--data-dir", help="an extracted LibriSpeech: check the parts are there, download nothing")
    p.add_argument("--mirror", default=librispeech.DEFAULT_MIRROR, help="base URL (default: %(default)s)")
    p.add_argument("--md5-file", help="md5sum-style table ('<md5>  <part>.tar.gz') overriding the published one")
    p.add_argument("--remove-archive", action="store_true", help="delete each .tar.gz after extraction")
    p.add_argument("--retries", type=int, default=5, help="resume attempts after a dropped connection")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry")
    p.add_argument("--backoff", type=float, default=2.0, help="seconds to wait before retry n (times n)")
    return p


def main() -> int:
    args = get_parser().parse_args()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    try:
        if args.data_dir:
            for part in args.parts:
                print(f"{part}: using {librispeech.find_part(args.data_dir, part)}", file=sys.stderr)
            return 0
        if not args.dl_dir:
            raise FsqAudioError("give --dl-dir (where to download) or --data-dir (an existing copy)")
        md5 = download.read_md5_file(args.md5_file) if args.md5_file else None
        for part in args.parts:
            path = librispeech.download_part(
                part, args.dl_dir, args.mirror, md5, keep_archive=not args.remove_archive,
                retries=args.retries, timeout=args.timeout, backoff=args.backoff,
            )
            print(f"{part}: ready in {path}", file=sys.stderr)
    except FsqAudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
