"""Token-LM output layouts side by side: factorised FSQ levels vs a full softmax over the codebook.

Trains each variant with the real trainer (`fsq_audio.lm.train.train_lm`) on the same token
directories, with the same transformer, for the same number of steps, and reports parameters,
training speed and validation bits per token. This is the measurement behind the design choice
in docs/lm.md.

Run::

    fsq-audio tokenize ../shared/data/train -o tokens/train -s 2
    fsq-audio tokenize ../shared/data/dev -o tokens/dev -s 2
    python benchmarks/lm_heads.py --train tokens/train --valid tokens/dev --steps 300 --out runs/bench/lm_heads.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import environment, environment_lines, markdown_table, write_json

VARIANTS = {
    "factorised": ["model.factorised=true"],
    "softmax": ["model.factorised=false"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, nargs="+", help="token directories to train on")
    p.add_argument("--valid", required=True, nargs="+", help="token directories to validate on")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--stages", type=int, nargs="+", default=[1], help="modelled stages to compare (default: 1)")
    p.add_argument("--steps", type=int, default=300, help="training steps per variant")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--segment-frames", type=int, default=128)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra LM recipe overrides for every variant (e.g. model.dim=128)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="write the rows as JSON")
    return p.parse_args(argv)


def run_variant(name: str, stages: int, args: argparse.Namespace, work: Path) -> dict:
    """Train one variant; returns params, step time and final validation metrics."""
    from fsq_audio.lm.config import load_lm_train_config
    from fsq_audio.lm.model import TokenLM
    from fsq_audio.lm.train import train_lm

    run_dir = work / f"{name}-k{stages}"
    overrides = [f"run_dir={run_dir}", f"export_dir={run_dir / 'export'}",
                 f"data.train={json.dumps(args.train)}", f"data.valid={json.dumps(args.valid)}",
                 f"max_steps={args.steps}", f"batch_size={args.batch_size}", f"model.num_stages={stages}",
                 f"data.segment_frames={args.segment_frames}", f"valid_every={args.steps}", "save_every=0",
                 f"log_every={max(1, args.steps // 10)}", f"warmup_steps={args.steps // 10}",
                 f"threads={args.threads}", "model.dropout=0.0", *VARIANTS[name], *args.overrides]
    config = load_lm_train_config(Path(__file__).resolve().parents[1] / "recipes" / "lm_small.yaml", overrides)
    start = time.perf_counter()
    train_lm(config)
    wall = time.perf_counter() - start
    lm = TokenLM(config.model)
    head = sum(p.numel() for n, p in lm.named_parameters() if n.startswith(("head", "frame_embed")))
    logs = [json.loads(x) for x in (run_dir / "train.jsonl").read_text().splitlines()]
    valid = [json.loads(x) for x in (run_dir / "valid.jsonl").read_text().splitlines()][-1]
    return {"variant": name, "stages": stages, "params_M": lm.num_parameters() / 1e6, "embed_head_M": head / 1e6,
            "audio_s_per_s": sum(r["audio_s_per_s"] for r in logs[1:]) / max(1, len(logs) - 1), "wall_s": wall,
            "train_bits_per_token": logs[-1]["bits_per_token"], **{f"valid_{k}": v for k, v in valid.items()}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = environment()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lm_heads-") as tmp:
        for stages in args.stages:
            for name in args.variants:
                rows.append(run_variant(name, stages, args, Path(tmp)))
    print("\n".join(environment_lines(env)))
    print(f"{args.steps} steps, batch {args.batch_size} x {args.segment_frames} frames, {args.threads} thread(s)\n")
    print(markdown_table(
        ["layout", "stages", "params (M)", "embeddings+head (M)", "train audio s/s", "valid bits/token",
         "valid bits/s"],
        [[r["variant"], r["stages"], r["params_M"], r["embed_head_M"], r["audio_s_per_s"],
          r["valid_bits_per_token"], r["valid_bits_per_second"]] for r in rows]))
    write_json(args.out, {"environment": env, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
