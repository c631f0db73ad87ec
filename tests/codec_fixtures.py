"""Shared test helper: spread a random codec's latents so real speech gives varied tokens.

A fresh random encoder maps nearly everything to one code, which would make token-equality
tests pass trivially. (Importable from every test folder: pytest puts tests/ on sys.path for
the root conftest.)
"""

from __future__ import annotations

import torch

from fsq_audio.models.codec import Codec


def calibrate(codec: Codec, wav: torch.Tensor, std: float = 3.0) -> Codec:
    """Rescale the encoder output conv so latents of `wav` (1, 1, T) are ~N(0, std^2) per channel."""
    conv = codec.encoder.net[-1].conv
    with torch.no_grad():
        pad = (-wav.shape[-1]) % codec.hop_length
        z = codec.encoder(torch.nn.functional.pad(wav, (0, pad)))
        mean, spread = z.mean(dim=(0, 2)), z.std(dim=(0, 2)).clamp_min(1e-8)
        conv.weight.mul_((std / spread).view(-1, 1, 1))
        conv.bias.sub_(mean).mul_(std / spread)
    return codec
