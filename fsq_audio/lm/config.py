"""Config dataclasses of the token LM and of its training runs (recipes/lm_*.yaml).

The vocabulary is never written by hand: `levels`, `token_stages`, `frame_rate` and `codec_id`
are copied from the codec (or from the token shards' meta.json, which records them) when a
run starts, and `codebook_size`/`vocab_size`/`alphabets` derive from `levels`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

from fsq_audio.config import from_dict
from fsq_audio.errors import ConfigError


@dataclass
class LMConfig:
    """Architecture of the token LM (`fsq_audio.lm.model.TokenLM`).

    A frame holds the codes of the first `num_stages` residual stages. With `factorised`, every
    code is split into its FSQ level indices, so a frame is `num_stages * len(levels)` symbols of
    at most max(levels) values each; otherwise each code is one symbol of `codebook_size` values
    (full softmax). The transformer reads one summed embedding per frame; a small per-frame
    "depth" head predicts the frame's symbols one after another (see docs/lm.md).
    """

    name: str = "fsq-lm"
    # copied from the codec the tokens come from
    levels: list[int] = field(default_factory=list)
    token_stages: int = 0  # residual stages stored in the training tokens (num_stages <= this)
    frame_rate: float = 0.0
    codec_id: str = ""
    # what is modelled
    num_stages: int = 2  # first K residual stages; the rest are coded uniformly
    factorised: bool = True
    # frame transformer
    dim: int = 256
    layers: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    max_frames: int = 1000  # context window in frames (longer inputs slide, see TokenLM)
    rope_base: float = 10000.0
    dropout: float = 0.0
    # per-frame depth head: hidden layers of its per-symbol MLP (the first is computed once per frame)
    depth_layers: int = 1
    depth_hidden: int = 512
    # training only: probability that an item keeps a random prefix of the modelled stages
    stage_dropout: float = 0.25

    def validate(self) -> "LMConfig":
        """Raise ConfigError when fields are inconsistent (call once the codec fields are filled)."""
        if not self.levels or min(self.levels) < 2:
            raise ConfigError(f"model.levels must be FSQ levels >= 2, got {self.levels}")
        if not 1 <= self.num_stages <= self.token_stages:
            raise ConfigError(f"model.num_stages must be in 1..{self.token_stages}, got {self.num_stages}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ConfigError(f"model.dim {self.dim} must split into {self.heads} heads of even size")
        if self.max_frames < 2 or self.frame_rate <= 0:
            raise ConfigError("model.max_frames must be >= 2 and frame_rate > 0")
        if not 0.0 <= self.stage_dropout <= 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.stage_dropout and model.dropout must be probabilities")
        return self

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    @property
    def vocab_size(self) -> int:
        """Codes per stage (the codec's codebook size)."""
        return self.codebook_size

    @property
    def stage_alphabets(self) -> list[int]:
        """Alphabet sizes of one stage's symbols: the levels (factorised) or [codebook_size]."""
        return list(self.levels) if self.factorised else [self.codebook_size]

    @property
    def symbols_per_stage(self) -> int:
        return len(self.stage_alphabets)

    @property
    def alphabets(self) -> list[int]:
        """Alphabet size of every symbol of a frame, stage-major (num_stages * symbols_per_stage)."""
        return self.stage_alphabets * self.num_stages

    def with_codec(self, levels: list[int], stages: int, frame_rate: float, codec_id: str) -> "LMConfig":
        """A copy with the codec fields filled in (num_stages clipped to the codec's stages)."""
        return replace(self, levels=[int(v) for v in levels], token_stages=int(stages),
                       frame_rate=float(frame_rate), codec_id=str(codec_id),
                       num_stages=min(self.num_stages, int(stages))).validate()


@dataclass
class LMDataConfig:
    """Token shard directories (written by `fsq-audio tokenize`)."""

    train: list[str] = field(default_factory=list)
    valid: list[str] = field(default_factory=list)
    segment_frames: int = 250  # training crop length (<= model.max_frames); one crop per utterance and epoch
    min_frames: int = 10  # shorter utterances are not used for training
    valid_items: int = 0  # cap on validation segments (0: every frame of data.valid)
    num_workers: int = 0


@dataclass
class LMTrainConfig:
    """A whole LM training run: model, data, optimisation and bookkeeping."""

    model: LMConfig = field(default_factory=LMConfig)
    data: LMDataConfig = field(default_factory=LMDataConfig)
    run_dir: str = "runs/lm"
    seed: int = 0
    batch_size: int = 16
    max_steps: int = 20_000
    lr: float = 6e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    weight_decay: float = 0.1
    schedule: str = "cosine"  # "cosine" | "exponential" | "constant"
    lr_decay: float = 0.9999  # per step, exponential schedule
    warmup_steps: int = 500
    grad_accum: int = 1
    grad_clip: float = 1.0
    mixed_precision: str = "auto"  # "auto" (bf16 on GPU, no on CPU) | "no" | "bf16" | "fp16"
    log_every: int = 20
    valid_every: int = 500
    save_every: int = 500
    keep_checkpoints: int = 3
    export_dir: str = ""  # release directory written at the end of training (and every export_every)
    export_every: int = 0
    threads: int = 0


def load_lm_train_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> LMTrainConfig:
    """Recipe YAML (or defaults) plus `--set key=value` overrides; unknown keys fail."""
    from fsq_audio.train.config_io import apply_overrides, read_yaml

    data = read_yaml(path) if path else {}
    config = from_dict(LMTrainConfig, apply_overrides(data, list(overrides)))
    if config.data.segment_frames > config.model.max_frames:
        raise ConfigError(f"data.segment_frames ({config.data.segment_frames}) exceeds "
                          f"model.max_frames ({config.model.max_frames})")
    if config.schedule not in ("cosine", "exponential", "constant"):
        raise ConfigError(f"schedule must be cosine, exponential or constant, got {config.schedule!r}")
    return config
