"""Convolution wrappers (same/causal padding, optional weight norm), activations, residual blocks.

All tensors are channel-first (B, C, T).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations, parametrize


def _maybe_wn(module: nn.Module, weight_norm: bool) -> nn.Module:
    return parametrizations.weight_norm(module) if weight_norm else module


def remove_weight_norm(model: nn.Module) -> None:
    """Fold every weight-norm parametrization of `model` into a plain weight (in place).

    Deep copies of a parametrized module share its injected class, and removing a
    parametrization deletes the property from that class; each module therefore gets a class
    of its own first, so folding a copy never breaks the original.
    """
    for m in model.modules():
        if parametrize.is_parametrized(m, "weight"):
            cls = type(m)
            m.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)


class Conv1d(nn.Module):
    """Conv1d whose output has length ceil(T / stride) ("same" or causal padding).

    For stride s the layer pads so that an input of length T (a multiple of s) gives T / s frames.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1,
                 causal: bool = False, weight_norm: bool = True, groups: int = 1):
        super().__init__()
        self.conv = _maybe_wn(nn.Conv1d(cin, cout, kernel, stride, dilation=dilation, groups=groups), weight_norm)
        total = dilation * (kernel - 1) - (stride - 1)
        self.pad = (total, 0) if causal else ((total + 1) // 2, total // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, self.pad))


class ConvTranspose1d(nn.Module):
    """Transposed conv that upsamples T frames to exactly T * stride samples (kernel = 2 * stride)."""

    def __init__(self, cin: int, cout: int, stride: int, causal: bool = False, weight_norm: bool = True):
        super().__init__()
        self.conv = _maybe_wn(nn.ConvTranspose1d(cin, cout, 2 * stride, stride), weight_norm)
        self.trim = (0, stride) if causal else (stride // 2, stride - stride // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return y[..., self.trim[0]: y.shape[-1] - self.trim[1]]


class Snake(nn.Module):
    """Snake activation x + sin^2(a x) / a with a learned per-channel a."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + (self.alpha * x).sin().pow(2) / (self.alpha + 1e-9)


def activation(name: str, channels: int) -> nn.Module:
    """An activation module by config name."""
    if name == "snake":
        return Snake(channels)
    if name == "gelu":
        return nn.GELU()
    return nn.ELU()


class ResidualUnit(nn.Module):
    """x + conv1x1(act(conv_k,dilated(act(x)))) at constant channels."""

    def __init__(self, channels: int, dilation: int, kernel: int, act: str, causal: bool, weight_norm: bool):
        super().__init__()
        self.block = nn.Sequential(
            activation(act, channels),
            Conv1d(channels, channels, kernel, dilation=dilation, causal=causal, weight_norm=weight_norm),
            activation(act, channels),
            Conv1d(channels, channels, 1, weight_norm=weight_norm),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ConvNeXtBlock(nn.Module):
    """Vocos-style ConvNeXt block: depthwise conv, LayerNorm, MLP, layer scale, residual."""

    def __init__(self, dim: int, intermediate: int, kernel: int = 7, causal: bool = False,
                 layer_scale: float = 1e-1):
        super().__init__()
        self.dwconv = Conv1d(dim, dim, kernel, causal=causal, weight_norm=False, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, intermediate)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).transpose(1, 2)  # (B, T, C)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)
