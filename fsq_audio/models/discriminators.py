"""Discriminators for adversarial training (kept out of `Codec`: training only).

- `PeriodDiscriminator` / multi-period (HiFi-GAN): the waveform folded by a period into 2-D.
- `STFTDiscriminator` / multi-resolution complex STFT (DAC/EnCodec-style), optionally split
  into frequency sub-bands.
Each returns a list of feature maps whose last element is the logit map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from fsq_audio.config import LossConfig


def _conv2d(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1)) -> nn.Module:
    pad = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2)
    return weight_norm(nn.Conv2d(cin, cout, kernel, stride, pad))


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN period discriminator on (B, 1, T) audio."""

    def __init__(self, period: int, channels: int):
        super().__init__()
        self.period = period
        chans = [1, channels, 4 * channels, 16 * channels, 32 * channels]
        self.convs = nn.ModuleList(
            _conv2d(chans[i], chans[i + 1], (5, 1), (3, 1)) for i in range(len(chans) - 1))
        self.convs.append(_conv2d(chans[-1], chans[-1], (5, 1)))
        self.post = _conv2d(chans[-1], 1, (3, 1))

    def forward(self, x: Tensor) -> list[Tensor]:
        b, c, t = x.shape
        x = F.pad(x, (0, (-t) % self.period), mode="reflect" if t > self.period else "constant")
        x = x.view(b, c, -1, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        feats.append(self.post(x))
        return feats


class STFTDiscriminator(nn.Module):
    """Complex-STFT discriminator: (real, imag) as 2 channels, 2-D convs over (freq, time)."""

    def __init__(self, n_fft: int, channels: int, bands: int = 1):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        n_bins = n_fft // 2 + 1
        edges = torch.linspace(0, n_bins, bands + 1).round().long().tolist()
        self.bands = list(zip(edges[:-1], edges[1:]))
        self.band_convs = nn.ModuleList(self._stack(channels) for _ in self.bands)
        self.post = _conv2d(channels, 1, (3, 3))

    @staticmethod
    def _stack(ch: int) -> nn.ModuleList:
        return nn.ModuleList([
            _conv2d(2, ch, (3, 9)),
            _conv2d(ch, ch, (3, 9), (1, 2)),
            _conv2d(ch, ch, (3, 9), (1, 2)),
            _conv2d(ch, ch, (3, 9), (1, 2)),
            _conv2d(ch, ch, (3, 3)),
        ])

    def forward(self, x: Tensor) -> list[Tensor]:
        spec = torch.stft(x.squeeze(1).float(), self.n_fft, self.hop, window=self.window, return_complex=True)
        spec = torch.view_as_real(spec).permute(0, 3, 2, 1)  # (B, 2, frames, bins)
        feats, outs = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs):
            h = spec[..., lo:hi]
            for conv in convs:
                h = F.leaky_relu(conv(h), 0.1)
                feats.append(h)
            outs.append(h)
        feats.append(self.post(torch.cat(outs, dim=-1)))
        return feats


class Discriminator(nn.Module):
    """All discriminators of a LossConfig; forward gives one feature list per discriminator."""

    def __init__(self, config: LossConfig):
        super().__init__()
        self.config = config
        self.discs = nn.ModuleList(
            [PeriodDiscriminator(p, config.disc_channels) for p in config.mpd_periods]
            + [STFTDiscriminator(n, config.disc_channels, config.mrd_bands) for n in config.mrd_ffts])

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        return [d(x) for d in self.discs]
