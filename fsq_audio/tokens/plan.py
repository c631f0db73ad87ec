"""The tokenization plan (which utterance goes into which shard) and the final merge.

The plan depends only on the set of input ids: rows are sorted by id and cut into consecutive
shards of `shard_size`, so every run over the same input (any file order, any process count)
reproduces it, and a re-run can skip the shards that already exist.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from fsq_audio import __version__
from fsq_audio.data.manifest import load_rows, scan_folder
from fsq_audio.errors import ConfigError, FsqAudioError
from fsq_audio.fileio import atomic_write_text
from fsq_audio.tokens import shards as fmt


def collect_rows(source: str | os.PathLike, jobs: int = 1) -> tuple[list[dict], list[dict]]:
    """Rows of a file, folder or manifest, and {"id", "path", "error"} of folder files that fail to open."""
    source = Path(source)
    if source.is_dir():
        rows, bad = scan_folder(source, jobs=jobs)
        return rows, [{"id": None, "path": p, "error": e} for p, e in bad]
    rows = load_rows(source)
    for n, row in enumerate(rows, 1):
        if "id" not in row:
            raise ConfigError(f"{source}: row {n} has no 'id'")
    return rows, []


@dataclass
class Plan:
    """Rows sorted by id, cut into shards of `shard_size` utterances."""

    rows: list[dict]
    shard_size: int

    @classmethod
    def from_rows(cls, rows: list[dict], shard_size: int) -> "Plan":
        if shard_size < 1:
            raise ConfigError(f"--shard-size must be >= 1, got {shard_size}")
        rows = sorted(rows, key=lambda r: str(r["id"]))
        for a, b in zip(rows, rows[1:]):
            if str(a["id"]) == str(b["id"]):
                raise ConfigError(f"duplicate utterance id {a['id']!r} ({a['path']} and {b['path']})")
        return cls(rows, shard_size)

    @property
    def num_shards(self) -> int:
        return -(-len(self.rows) // self.shard_size)

    def shard_rows(self, k: int) -> list[dict]:
        return self.rows[k * self.shard_size: (k + 1) * self.shard_size]

    def ids_hash(self) -> str:
        h = hashlib.sha256()
        for r in self.rows:
            h.update(str(r["id"]).encode("utf-8") + b"\n")
        return h.hexdigest()

    def fingerprint(self, model_id: str, stages: int) -> dict:
        """What a token directory is made of; shards of different fingerprints never mix."""
        return {"format_version": fmt.FORMAT_VERSION, "model_id": model_id, "stages": stages,
                "shard_size": self.shard_size, "num_shards": self.num_shards,
                "num_utterances": len(self.rows), "ids_sha256": self.ids_hash()}


def check_plan(root: Path, fingerprint: dict, write: bool) -> None:
    """Refuse a directory holding another plan's shards; record the plan if `write` and absent."""
    old = fmt.read_json(root / fmt.PLAN)
    if old is None:
        if any(root.glob("shard-*.npz")):
            raise FsqAudioError(f"{root}: holds token shards but no {fmt.PLAN}; use a new folder or --force")
        if write:
            atomic_write_text(root / fmt.PLAN, _dumps(fingerprint))
        return
    diff = [k for k in fingerprint if old.get(k) != fingerprint[k]]
    if diff:
        k = diff[0]
        what = "the input files" if k in ("ids_sha256", "num_utterances", "num_shards") else k
        raise FsqAudioError(f"{root}: was tokenized with different {what} ({k}: {old.get(k)!r} there, "
                            f"{fingerprint[k]!r} now); use a new folder or --force to start over")


def clear(root: Path) -> None:
    """Remove what tokenize writes in `root` (shards, lists, plan, index, meta); nothing else."""
    names = [fmt.META, fmt.INDEX, fmt.PLAN, fmt.FAILED]
    for p in [*root.glob("shard-*.npz"), *root.glob("shard-*.failed.jsonl"), *(root / n for n in names)]:
        p.unlink(missing_ok=True)
    remove_stale_parts(root, None)


def remove_stale_parts(root: Path, shards: list[int] | None) -> None:
    """Delete temporary files left by a killed run (for `shards`, or all when None)."""
    for p in root.glob(".shard-*.part"):
        k = p.name[len(".shard-"):].split(".", 1)[0]
        if shards is None or (k.isdigit() and int(k) in shards):
            p.unlink(missing_ok=True)


def merge(root: Path, plan: Plan, info: dict, scan_failures: list[dict]) -> dict:
    """Write index.jsonl, failed.jsonl and meta.json once every shard exists.

    Args:
        root: token directory.
        plan: the run's plan.
        info: model facts for meta.json (model_id, frame_rate, sample_rate, stages,
            codebook_size, levels, dtype, compute_dtype).
        scan_failures: inputs that never made it into the plan.

    Returns:
        {"complete": bool, "missing_shards", "num_utterances", "total_frames", "failures"}.
    """
    missing = [k for k in range(plan.num_shards) if not (root / fmt.shard_name(k)).exists()]
    failures = list(scan_failures)
    for k in range(plan.num_shards):
        failures += fmt.read_jsonl(root / fmt.failed_name(k))
    result = {"complete": not missing, "missing_shards": len(missing), "failures": failures,
              "num_utterances": 0, "total_frames": 0}
    if missing:
        return result
    index = []
    for k in range(plan.num_shards):
        shard = fmt.read_shard(root / fmt.shard_name(k), tokens=False)
        for uid, off, n in zip(shard.ids, shard.offsets, shard.frames):
            index.append({"id": str(uid), "shard": fmt.shard_name(k), "offset": int(off), "frames": int(n),
                          "frame_rate": info["frame_rate"], "stages": info["stages"], "model_id": info["model_id"]})
    total = sum(r["frames"] for r in index)
    fmt.write_jsonl(root / fmt.INDEX, index)
    if failures:
        fmt.write_jsonl(root / fmt.FAILED, failures)
    else:
        (root / fmt.FAILED).unlink(missing_ok=True)
    meta = {**info, "num_utterances": len(index), "total_frames": total, "num_shards": plan.num_shards,
            "shard_size": plan.shard_size, "num_failed": len(failures), "format_version": fmt.FORMAT_VERSION,
            "package_version": __version__}
    atomic_write_text(root / fmt.META, _dumps(meta))
    return {**result, "num_utterances": len(index), "total_frames": total}


def _dumps(obj: dict) -> str:
    import json

    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
