"""Decoders: (B, latent_dim, F) -> (B, 1, F * hop).

- `ISTFTDecoder` (Vocos-style): ConvNeXt backbone at the frame rate, optional transposed-conv
  upsampling to the iSTFT hop, a linear head predicting log-magnitude and phase, inverse STFT.
  Cheap on CPU: almost all work happens at 50 frames/s.
- `ConvDecoder`: the transposed-convolution mirror of the encoder (DAC/EnCodec-style).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsq_audio.config import CodecConfig
from fsq_audio.nn.layers import Conv1d, ConvNeXtBlock, ConvTranspose1d, ResidualUnit, activation


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding: F frames -> exactly F * hop samples.

    Frame i is centred at sample i * hop + hop / 2. Uses irfft + overlap-add (fold). The ONNX
    exporter handles neither this nor torch.polar; fsq_audio.onnx_export swaps in a real-valued
    equivalent (DFT matmuls and a transposed convolution) for export only.
    """

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, spec: Tensor) -> Tensor:
        """(B, n_fft // 2 + 1, F) complex spectrum -> (B, F * hop) waveform."""
        frames = spec.shape[-1]
        pad = (self.n_fft - self.hop) // 2
        out_len = (frames - 1) * self.hop + self.n_fft
        x = torch.fft.irfft(spec, n=self.n_fft, dim=1) * self.window.view(1, -1, 1)
        y = F.fold(x, output_size=(1, out_len), kernel_size=(1, self.n_fft), stride=(1, self.hop))
        env = F.fold(self.window.square().view(1, -1, 1).expand(1, -1, frames), output_size=(1, out_len),
                     kernel_size=(1, self.n_fft), stride=(1, self.hop))
        y = y[:, 0, 0, pad: pad + frames * self.hop]
        env = env[0, 0, 0, pad: pad + frames * self.hop]
        return y / env.clamp_min(1e-8)


class ISTFTDecoder(nn.Module):
    """ConvNeXt backbone + iSTFT head."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        dim, causal = config.decoder_dim, config.causal
        self.up = config.hop_length // config.istft_hop
        self.n_fft = 4 * config.istft_hop
        self.embed = Conv1d(config.latent_dim, dim, 7, causal=causal, weight_norm=False)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, config.decoder_intermediate, causal=causal) for _ in range(config.decoder_layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)
        self.upsample = ConvTranspose1d(dim, dim, self.up, causal=causal, weight_norm=False) if self.up > 1 else None
        self.head = nn.Linear(dim, self.n_fft + 2)
        self.istft = ISTFT(self.n_fft, config.istft_hop)

    def forward(self, z: Tensor) -> Tensor:
        """(B, latent_dim, F) -> (B, 1, F * hop)."""
        mag, phase = self.spectrum(z)
        return self.istft(torch.polar(mag, phase)).unsqueeze(1)

    def spectrum(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(B, latent_dim, F) -> fp32 magnitude and phase, each (B, n_fft // 2 + 1, F * up)."""
        x = self.norm(self.embed(z).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.final_norm(x.transpose(1, 2)).transpose(1, 2)
        if self.upsample is not None:
            x = self.upsample(x)
        mag, phase = self.head(x.transpose(1, 2)).float().transpose(1, 2).chunk(2, dim=1)
        # |STFT| of full-scale audio stays below n_fft / 2; the cap only guards against overflow
        # (a cap near speech levels, as in Vocos' 1e2, silences loud bins and stops their gradient)
        return torch.exp(mag.clamp(max=math.log(1e4))), phase


class ConvDecoder(nn.Module):
    """Mirror of the encoder: input conv, per stride a transposed conv and residual units."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        c, wn, causal = config.decoder_channels, config.weight_norm, config.causal
        layers: list[nn.Module] = [Conv1d(config.latent_dim, c, 7, causal=causal, weight_norm=wn)]
        for stride in reversed(config.encoder_strides):
            layers += [activation(config.activation, c), ConvTranspose1d(c, c // 2, stride, causal, wn)]
            c //= 2
            for d in config.encoder_dilations:
                layers.append(ResidualUnit(c, d, config.encoder_kernel, config.activation, causal, wn))
        layers += [activation(config.activation, c), Conv1d(c, 1, 7, causal=causal, weight_norm=wn)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """(B, latent_dim, F) -> (B, 1, F * hop)."""
        return self.net(z)


def build_decoder(config: CodecConfig) -> nn.Module:
    """The decoder named by `config.decoder`."""
    return ISTFTDecoder(config) if config.decoder == "istft" else ConvDecoder(config)


def context_frames(config: CodecConfig) -> int:
    """Frames of context on each side that make windowed decoding match whole decoding.

    Causal convolutions see their whole receptive field on the left, hence twice the context.
    """
    side = 1 if config.causal else 2
    if config.decoder == "istft":
        frames = math.ceil(6 * (1 + config.decoder_layers) / side)  # embed conv (k7) + a k7 depthwise conv per block
        frames += math.ceil(4 * config.istft_hop / config.hop_length)  # iSTFT window overlap
        return frames + 2
    rf, jump = 6, 1  # in output samples, walking back from the output
    for stride in config.encoder_strides:
        rf += sum((config.encoder_kernel - 1) * d for d in config.encoder_dilations) * jump
        jump *= stride
        rf += 2 * jump
    return math.ceil((rf + 6 * jump) / side / config.hop_length) + 2
