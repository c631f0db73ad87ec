"""Spectral reconstruction losses on (B, 1, T) waveforms.

- `MultiScaleMelLoss`: L1 between log-mel spectrograms at several window sizes (DAC-style).
- `MultiResolutionSTFTLoss`: spectral convergence + log-magnitude L1 (Parallel WaveGAN-style).
- `mel_distance`: the evaluation metric of BASELINES-dev.md (80 Slaney mels, 1024-point Hann, hop 256).
"""

from __future__ import annotations

import librosa
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def stft_mag(x: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    """(B, 1, T) -> (B, n_fft // 2 + 1, frames) magnitude, centred with reflect padding."""
    x = x.reshape(-1, x.shape[-1]).float()
    if x.shape[-1] <= n_fft // 2:  # reflect padding needs T > n_fft / 2
        x = F.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    spec = torch.stft(x, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    return spec.abs()


class MelSpectrogram(nn.Module):
    """Magnitude mel spectrogram (Slaney mel scale and norm, like librosa)."""

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("fb", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1, T) -> (B, n_mels, frames)."""
        return self.fb @ stft_mag(x, self.n_fft, self.hop, self.window)


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of |log10 max(M, 1e-5) - log10 max(M_hat, 1e-5)|."""

    def __init__(self, sample_rate: int, windows: list[int], n_mels: list[int]):
        super().__init__()
        if len(windows) != len(n_mels):
            raise ValueError("mel_windows and mel_bins must have the same length")
        self.mels = nn.ModuleList(MelSpectrogram(sample_rate, w, w // 4, m) for w, m in zip(windows, n_mels))

    def forward(self, y_hat: Tensor, y: Tensor) -> Tensor:
        loss = 0.0
        for mel in self.mels:
            a, b = mel(y_hat), mel(y)
            loss = loss + F.l1_loss(a.clamp_min(1e-5).log10(), b.clamp_min(1e-5).log10())
        return loss / len(self.mels)


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1, averaged over resolutions (hop = window / 4)."""

    def __init__(self, windows: list[int]):
        super().__init__()
        self.windows = list(windows)
        for w in self.windows:
            self.register_buffer(f"win_{w}", torch.hann_window(w), persistent=False)

    def forward(self, y_hat: Tensor, y: Tensor) -> Tensor:
        loss = 0.0
        for w in self.windows:
            a = stft_mag(y_hat, w, w // 4, getattr(self, f"win_{w}"))
            b = stft_mag(y, w, w // 4, getattr(self, f"win_{w}"))
            sc = torch.linalg.norm(b - a) / torch.linalg.norm(b).clamp_min(1e-7)
            mag = F.l1_loss(a.clamp_min(1e-7).log(), b.clamp_min(1e-7).log())
            loss = loss + sc + mag
        return loss / len(self.windows)


class MelDistance(nn.Module):
    """BASELINES-dev.md mel-L1: mean |ln max(M_ref, 1e-5) - ln max(M_deg, 1e-5)| (80 Slaney mels, 0-8 kHz,
    1024-point periodic Hann, hop 256, centred, reflect padding), at 16 kHz."""

    def __init__(self, sample_rate: int = 16000):
        super().__init__()
        self.mel = MelSpectrogram(sample_rate, 1024, 256, 80, 0.0, 8000.0)

    def forward(self, deg: Tensor, ref: Tensor) -> Tensor:
        a, b = self.mel(deg), self.mel(ref)
        return (a.clamp_min(1e-5).log() - b.clamp_min(1e-5).log()).abs().mean()
