"""Plot a training run's validation curve (mel distance on the fixed dev clips) and print a table.

    python benchmarks/training_curve.py runs/fsq-speech-16k -o docs/img/training_curve.png

Reads RUN_DIR/valid.jsonl (written by the trainer at every `valid_every` steps) and
RUN_DIR/train.jsonl (training losses and throughput).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("-o", "--output", type=Path, help="PNG to write")
    args = ap.parse_args()
    valid, train = read_jsonl(args.run_dir / "valid.jsonl"), read_jsonl(args.run_dir / "train.jsonl")
    if not valid:
        raise SystemExit(f"{args.run_dir}: no validation rows yet")
    keys = sorted(k for k in valid[0] if k != "step")
    print("| step | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for row in valid:
        print(f"| {row['step']} | " + " | ".join(f"{row.get(k, float('nan')):.3f}" for k in keys) + " |")
    if train:
        speeds = sorted(r["audio_s_per_s"] for r in train if "audio_s_per_s" in r)
        print(f"\ntraining throughput: median {speeds[len(speeds) // 2]:.2f} s of audio per wall second "
              f"over {len(speeds)} log intervals")
    if args.output:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4))
        for k in (k for k in keys if k.startswith("valid/mel")):
            ax.plot([r["step"] for r in valid], [r[k] for r in valid], marker="o", label=k)
        if train:
            ax.plot([r["step"] for r in train], [r["spec/mel"] * 2.3026 for r in train], alpha=0.3,
                    label="train multi-scale mel (ln units)")
        ax.set_xlabel("step")
        ax.set_ylabel("mel distance (ln)")
        ax.set_title(f"{args.run_dir.name}: mel distance on dev clips")
        ax.grid(alpha=0.3)
        ax.legend()
        for k in (k for k in keys if k.startswith(("valid/stoi", "valid/pesq"))):
            ax2.plot([r["step"] for r in valid], [r.get(k, float("nan")) for r in valid], marker="o", label=k)
        ax2.set_xlabel("step")
        ax2.set_title("STOI and PESQ-WB on dev clips")
        ax2.grid(alpha=0.3)
        ax2.legend()
        fig.tight_layout()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(args.output, dpi=110)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
