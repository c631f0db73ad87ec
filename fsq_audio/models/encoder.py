"""Convolutional waveform encoder: (B, 1, T) -> (B, latent_dim, T / hop)."""

from __future__ import annotations

from torch import Tensor, nn

from fsq_audio.config import CodecConfig
from fsq_audio.nn.layers import Conv1d, ResidualUnit, activation


class Encoder(nn.Module):
    """Input conv, then per stride: residual units (dilated) and a strided downsampling conv."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        c, wn, causal = config.encoder_channels, config.weight_norm, config.causal
        layers: list[nn.Module] = [Conv1d(1, c, 7, causal=causal, weight_norm=wn)]
        for stride in config.encoder_strides:
            for d in config.encoder_dilations:
                layers.append(ResidualUnit(c, d, config.encoder_kernel, config.activation, causal, wn))
            layers += [activation(config.activation, c),
                       Conv1d(c, 2 * c, 2 * stride, stride=stride, causal=causal, weight_norm=wn)]
            c *= 2
        layers += [activation(config.activation, c), Conv1d(c, config.latent_dim, 3, causal=causal, weight_norm=wn)]
        self.net = nn.Sequential(*layers)
        # Keeps every frame at unit scale: without it the latents drift into tanh saturation,
        # every frame maps to one corner code and FSQ's (straight-through) gradient dies.
        self.norm = nn.LayerNorm(config.latent_dim, elementwise_affine=False) if config.latent_norm else None

    def forward(self, wav: Tensor) -> Tensor:
        """(B, 1, T) with T a multiple of hop -> (B, latent_dim, T / hop)."""
        z = self.net(wav)
        if self.norm is not None:
            z = self.norm(z.transpose(1, 2)).transpose(1, 2)
        return z


def receptive_field(config: CodecConfig) -> int:
    """Receptive field of one encoder output frame, in input samples."""
    rf, jump = 1, 1
    rf += 6 * jump  # input conv, kernel 7
    for stride in config.encoder_strides:
        for d in config.encoder_dilations:
            rf += (config.encoder_kernel - 1) * d * jump
        rf += (2 * stride - 1) * jump
        jump *= stride
    rf += 2 * jump  # output conv, kernel 3
    return rf
