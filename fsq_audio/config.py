"""Config dataclasses. A config defines its module completely and is passed whole.

Recipe YAML -> `TrainConfig` (holding a `CodecConfig`); unknown keys fail with ConfigError.
Derived values (`hop_length`, `codebook_size`, ...) are properties, never stored.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from fsq_audio.errors import ConfigError


@dataclass
class CodecConfig:
    """Architecture of a codec: encoder -> residual FSQ -> decoder.

    Frame rate is ``sample_rate / prod(encoder_strides)``; each stage carries
    ``ceil(log2(prod(levels)))`` bits per frame.
    """

    name: str = "fsq-codec"
    sample_rate: int = 16000
    # quantizer
    levels: list[int] = field(default_factory=lambda: [8, 8, 8, 5, 5, 5])
    num_stages: int = 6
    stage_dropout: float = 0.5  # training only: prob. a batch item keeps a random prefix of stages
    # encoder (waveform convs, residual units with dilations, strided downsampling)
    encoder_channels: int = 8  # channels of the first level; doubled at each downsampling
    encoder_strides: list[int] = field(default_factory=lambda: [2, 4, 5, 8])
    encoder_dilations: list[int] = field(default_factory=lambda: [1, 3, 9])
    encoder_kernel: int = 7
    latent_dim: int = 256
    latent_norm: bool = True  # LayerNorm (no affine) on encoder frames before the quantizer
    # decoder: "istft" (Vocos-style ConvNeXt + inverse STFT) or "conv" (transposed-conv mirror)
    decoder: str = "istft"
    decoder_dim: int = 384
    decoder_layers: int = 8
    decoder_intermediate: int = 1152
    istft_hop: int = 160  # iSTFT hop in samples; must divide the frame hop; n_fft = 4 * istft_hop
    decoder_channels: int = 256  # conv decoder: channels after the input conv, halved per upsampling
    # common
    activation: str = "elu"  # "elu" | "snake" | "gelu"
    causal: bool = False
    weight_norm: bool = True
    # inference windows (define canonical tokens: see Codec.encode)
    encode_window_frames: int = 100
    decode_window_frames: int = 500

    def __post_init__(self) -> None:
        self.levels = [int(v) for v in self.levels]
        if not self.levels or min(self.levels) < 2:
            raise ConfigError(f"levels must be integers >= 2, got {self.levels}")
        if not 1 <= self.num_stages <= 64:
            raise ConfigError("num_stages must be in 1..64 (the .fsqa limit)")
        limits = {"sample_rate": (1000, 1 << 20), "encoder_channels": (1, 4096), "latent_dim": (1, 8192),
                  "decoder_dim": (1, 8192), "decoder_layers": (0, 256), "decoder_intermediate": (1, 32768),
                  "decoder_channels": (2, 8192), "encoder_kernel": (1, 63), "istft_hop": (1, 8192),
                  "encode_window_frames": (1, 100_000), "decode_window_frames": (1, 100_000)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
        if not self.encoder_strides or not all(isinstance(v, int) and 1 <= v <= 64 for v in self.encoder_strides):
            raise ConfigError(f"encoder_strides must be integers in 1..64, got {self.encoder_strides}")
        if len(self.encoder_strides) > 8 or len(self.encoder_dilations) > 8 or len(self.levels) > 16:
            raise ConfigError("too many encoder_strides/encoder_dilations/levels")
        if self.decoder not in ("istft", "conv"):
            raise ConfigError(f"decoder must be 'istft' or 'conv', got {self.decoder!r}")
        if self.activation not in ("elu", "snake", "gelu"):
            raise ConfigError(f"activation must be elu, snake or gelu, got {self.activation!r}")
        if self.decoder == "istft" and self.hop_length % self.istft_hop:
            raise ConfigError(f"istft_hop {self.istft_hop} must divide the frame hop {self.hop_length}")
        if not 0.0 <= self.stage_dropout <= 1.0:
            raise ConfigError("stage_dropout must be in [0, 1]")

    @property
    def hop_length(self) -> int:
        return math.prod(self.encoder_strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    @property
    def bits_per_code(self) -> int:
        return max(1, math.ceil(math.log2(self.codebook_size)))

    @classmethod
    def tiny(cls, **overrides: Any) -> "CodecConfig":
        """A very small model for tests (random weights are fine). It leaves out `latent_norm` so
        test fixtures can spread its random latents by rescaling the encoder's output conv."""
        base = dict(latent_norm=False, 
            name="tiny", levels=[8, 5, 5, 5], num_stages=3, encoder_channels=4, encoder_dilations=[1, 3],
            latent_dim=16, decoder_dim=16, decoder_layers=1, decoder_intermediate=32, decoder_channels=16,
            encode_window_frames=20, decode_window_frames=40,
        )
        base.update(overrides)
        return cls(**base)


@dataclass
class DataConfig:
    """Training and validation audio: manifests (.jsonl), folders or files."""

    train: list[str] = field(default_factory=list)
    valid: list[str] = field(default_factory=list)
    segment_seconds: float = 1.0
    min_seconds: float = 0.3
    normalize: str = "peak"  # "peak" | "loudness" | "none"
    num_workers: int = 0
    cache: bool = False  # keep decoded training audio in RAM (int16)
    valid_items: int = 16  # fixed validation clips
    valid_seconds: float = 4.0


@dataclass
class LossConfig:
    """Loss weights ("lambdas"). A weight of 0 still logs the loss but does not train on it."""

    mel: float = 15.0
    stft: float = 1.0
    waveform: float = 0.0
    adv: float = 1.0
    feature: float = 2.0
    usage: float = 1.0  # FSQ level-usage regulariser (keeps codes spread; see FSQ.regularizers)
    saturation: float = 1.0  # penalty on latents deep in tanh's flat tails
    mel_windows: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 1024, 2048])
    mel_bins: list[int] = field(default_factory=lambda: [5, 10, 20, 40, 80, 160, 320])
    stft_windows: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    gan: str = "hinge"  # "hinge" | "lsgan"
    mpd_periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    mrd_ffts: list[int] = field(default_factory=lambda: [512, 1024, 2048])
    mrd_bands: int = 1  # >1 splits each STFT discriminator into sub-bands
    disc_channels: int = 32


@dataclass
class TrainConfig:
    """A whole training run: model, data, losses, optimisation and bookkeeping."""

    model: CodecConfig = field(default_factory=CodecConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run_dir: str = "runs/default"
    seed: int = 0
    batch_size: int = 16
    max_steps: int = 100_000
    lr: float = 3e-4
    lr_disc: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    weight_decay: float = 0.0
    schedule: str = "exponential"  # "exponential" | "cosine" | "constant"
    lr_decay: float = 0.999996  # per step, exponential schedule
    warmup_steps: int = 0
    grad_accum: int = 1
    grad_clip: float = 1000.0
    mixed_precision: str = "auto"  # "auto" (bf16 on GPU, no on CPU) | "no" | "bf16" | "fp16"
    adversarial_start: int = 0  # steps of spectral-only training before the GAN losses
    ema_decay: float = 0.0  # 0 disables the generator EMA
    log_every: int = 10
    valid_every: int = 500
    save_every: int = 500
    keep_checkpoints: int = 3
    export_every: int = 0  # >0: export the generator to `export_dir` every N steps
    export_dir: str = ""
    threads: int = 0  # CPU threads (0: torch default)


# ---------------------------------------------------------------- dict <-> dataclass


def to_dict(cfg: Any) -> dict:
    """A dataclass (nested) as a plain dict."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict, where: str = "") -> Any:
    """Build dataclass `cls` from `data`; unknown keys raise ConfigError naming them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join((where + '.' if where else '') + k for k in unknown)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        path = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(hint):
            kwargs[key] = from_dict(hint, value, path)
        else:
            kwargs[key] = _coerce(value, hint, path)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def _coerce(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint) or (Any,)
        return [_coerce(v, item, path) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if hint is int and float(value) != int(value):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return hint(value)
    if hint is str and not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    return value
