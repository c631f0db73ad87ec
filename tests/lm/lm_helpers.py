"""LM test helpers: token shards in the tokenizer's format, tiny LM configs and releases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from fsq_audio.lm.config import LMConfig
from fsq_audio.lm.model import TokenLM
from fsq_audio.lm.release import save_lm

REPO = Path(__file__).resolve().parents[2]
DEV_DATA = REPO.parent / "shared" / "data" / "dev"
LEVELS = [8, 5, 5, 5]


def write_shards(out: Path, utterances: list[np.ndarray], model_id: str = "tiny-000000000000",
                 levels: list[int] = LEVELS, frame_rate: float = 50.0, per_shard: int = 3) -> Path:
    """Write (S, F) utterances as a token directory with fsq_audio.tokens' shard writer."""
    from fsq_audio.tokens import shards as fmt

    out.mkdir(parents=True, exist_ok=True)
    stages, dtype = utterances[0].shape[0], fmt.token_dtype(math.prod(levels))
    rows = []
    for k, first in enumerate(range(0, len(utterances), per_shard)):
        chunk = utterances[first: first + per_shard]
        ids = [f"utt{first + i:04d}" for i in range(len(chunk))]
        shard = fmt.Shard.build(ids, chunk, stages, dtype)
        fmt.write_shard(out / fmt.shard_name(k), shard)
        rows += [{"id": i, "shard": fmt.shard_name(k), "offset": int(o), "frames": int(f),
                  "frame_rate": frame_rate, "stages": stages, "model_id": model_id}
                 for i, o, f in zip(ids, shard.offsets, shard.frames)]
    (out / fmt.INDEX).write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta = {"model_id": model_id, "frame_rate": frame_rate, "sample_rate": 16000, "stages": stages,
            "codebook_size": math.prod(levels), "levels": levels, "dtype": dtype.name,
            "num_utterances": len(utterances), "total_frames": int(sum(u.shape[1] for u in utterances)),
            "num_shards": k + 1}
    (out / fmt.META).write_text(json.dumps(meta))
    return out


def patterned_tokens(n: int, stages: int = 3, seed: int = 0, levels: list[int] = LEVELS) -> list[np.ndarray]:
    """Utterances with learnable structure: a few repeating codes per stage, random lengths 30..80."""
    rng = np.random.default_rng(seed)
    size = math.prod(levels)
    vocab = rng.integers(0, size, (stages, 4))
    out = []
    for _ in range(n):
        f = int(rng.integers(30, 81))
        phase = (np.arange(f) // 3 + rng.integers(0, 4)) % 4
        out.append(np.stack([vocab[s, phase] for s in range(stages)]).astype(np.int64))
    return out


def tiny_lm_config(codec_id: str, stages: int = 3, **overrides) -> LMConfig:
    base = dict(name="tiny-lm", dim=32, layers=2, heads=2, depth_layers=1, depth_hidden=32, max_frames=64,
                num_stages=2)
    base.update(overrides)
    return LMConfig(**base).with_codec(LEVELS, stages, 50.0, codec_id)


def save_tiny_lm(directory: Path, codec_id: str, seed: int = 0, **overrides) -> Path:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        save_lm(TokenLM(tiny_lm_config(codec_id, **overrides)).eval(), directory)
    return directory
