"""Bitrate of LM entropy coding (`fsq-audio compress --entropy lm`) vs fixed-width packing, per stage count.

For every audio file of a folder, the codec's tokens are computed once (all stages, the same
canonical windows as `compress`); then, for each stage count, the payload of the fixed-width
stream and of the LM's arithmetic-coded stream are measured (headers excluded: they are the
same size for both). The LM stream is the one `compress --entropy lm` writes; `--verify` also decodes
it and checks that the tokens come back exactly.

Run (the number recorded in docs/results.md)::

    python benchmarks/lm_entropy.py --model pretrained/fsq-speech-16k --lm pretrained/fsq-lm-cpu \\
        --data ../shared/data/dev --verify --out runs/bench/lm_entropy.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import DEV_DATA_DIR, environment, environment_lines, markdown_table, write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="codec release directory or name (default: the shipped model)")
    p.add_argument("--lm", required=True, help="token LM release directory")
    p.add_argument("--data", type=Path, default=DEV_DATA_DIR, help=f"audio folder (default: {DEV_DATA_DIR})")
    p.add_argument("--stages", type=int, nargs="+", help="stage counts (default: 1..LM stages, and all)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N files (0: all)")
    p.add_argument("--verify", action="store_true", help="also decode every LM stream and compare")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the codec encoder")
    p.add_argument("--out", type=Path, help="write per-file and total numbers as JSON")
    return p.parse_args(argv)


def file_tokens(codec, path: Path) -> np.ndarray:
    """(S, F) indices of a file, exactly as `compress_file` computes them."""
    from fsq_audio.api import encode_blocks, iter_model_rate

    blocks, _ = iter_model_rate(path, codec.sample_rate)
    return encode_blocks(codec, blocks, codec.num_stages)[0]


def measure(coder, codec, indices: np.ndarray, stages: int, verify: bool) -> dict:
    """Fixed and LM payload bits of one file's first `stages` stages."""
    from fsq_audio.bitstream import packed_size

    idx = indices[:stages]
    start = time.perf_counter()
    payload = coder.encode(idx)
    enc_s = time.perf_counter() - start
    row = {"stages": stages, "frames": idx.shape[1], "fixed_bits": 8 * packed_size(idx.size, codec.bits_per_code),
           "lm_bits": 8 * len(payload), "ideal_bits": coder.last_bits, "encode_s": enc_s}
    if verify:
        start = time.perf_counter()
        ok = np.array_equal(coder.decode(payload, stages, idx.shape[1]), idx)
        row.update(decode_s=time.perf_counter() - start, exact=ok)
        if not ok:
            raise SystemExit(f"LM stream of {stages} stages does not decode to the same tokens")
    return row


def summarise(rows: list[dict], frame_rate: float, lm_stages: int) -> list[list]:
    """One table row per stage count, totals over all files."""
    table = []
    for s in sorted({r["stages"] for r in rows}):
        sel = [r for r in rows if r["stages"] == s]
        frames = sum(r["frames"] for r in sel)
        secs = frames / frame_rate
        fixed, lm, ideal = (sum(r[k] for r in sel) for k in ("fixed_bits", "lm_bits", "ideal_bits"))
        enc = sum(r["encode_s"] for r in sel)
        table.append([s, min(s, lm_stages), fixed / secs, lm / secs, 100 * (1 - lm / fixed), lm / (frames * s),
                      ideal / (frames * s), secs / enc,
                      (secs / sum(r["decode_s"] for r in sel)) if "decode_s" in sel[0] else math.nan])
    return table


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from fsq_audio import audio
    from fsq_audio.lm.entropy import LMEntropyCoder
    from fsq_audio.models.codec import Codec

    torch.set_num_threads(args.threads)
    env = environment()
    codec = Codec.from_pretrained(args.model)
    coder = LMEntropyCoder.from_pretrained(args.lm, codec)
    k = coder.config.num_stages
    stages = args.stages or sorted(set(range(1, k + 1)) | {codec.num_stages})
    files = audio.find_audio_files(args.data)[: args.limit or None]
    if not files:
        raise SystemExit(f"{args.data}: no audio files")
    rows = []
    for i, path in enumerate(files):
        indices = file_tokens(codec, path)
        for s in stages:
            rows.append({"file": str(path), **measure(coder, codec, indices, s, args.verify)})
        print(f"[{i + 1}/{len(files)}] {path.name}: {indices.shape[1]} frames", file=sys.stderr)
    table = summarise(rows, codec.frame_rate, k)
    seconds = sum(r["frames"] for r in rows if r["stages"] == stages[0]) / codec.frame_rate
    print("\n".join(environment_lines(env)))
    print(f"codec {codec.model_id}, LM {coder.id} ({k} modelled stages), {len(files)} files, "
          f"{seconds:.1f} s of audio\n")
    print(markdown_table(["stages", "LM-coded stages", "fixed bits/s", "LM bits/s", "saving %", "LM bits/token",
                          "ideal bits/token", "encode x realtime", "decode x realtime"], table))
    write_json(args.out, {"environment": env, "codec": codec.model_id, "lm": coder.id, "rows": rows,
                          "table": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
