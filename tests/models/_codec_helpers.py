"""Helpers for model tests: a random tiny codec whose tokens actually vary with real speech.

A freshly initialised encoder has tiny latents, so nearly every frame falls into the same FSQ
cell and token tests would pass trivially. `calibrate` rescales the encoder's output conv so
the latents of a reference signal have zero mean and a few units of spread per channel.
"""

from __future__ import annotations

import numpy as np
import torch

from codec_fixtures import calibrate
from fsq_audio import Codec, CodecConfig, audio


def load_speech(path) -> torch.Tensor:
    """A mono clip as a (1, 1, T) float32 tensor at 16 kHz."""
    x, _ = audio.load(path, sample_rate=16000)
    return torch.from_numpy(x)[None]


def make_codec(speech: torch.Tensor, seed: int = 0, **overrides) -> Codec:
    """A seeded tiny codec (inference form) calibrated on `speech`."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        codec = Codec(CodecConfig.tiny(**overrides))
    return calibrate(codec.prepare_for_inference(), speech)


def tile(x: torch.Tensor, samples: int, seed: int = 0) -> torch.Tensor:
    """Repeat a (1, 1, T) clip to `samples` samples, varying the gain per repetition."""
    reps = -(-samples // x.shape[-1])
    gains = np.random.default_rng(seed).uniform(0.3, 1.0, reps).astype(np.float32)
    return torch.cat([x * float(g) for g in gains], dim=-1)[..., :samples]
