"""FSQ (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

Each of the D = len(levels) dimensions is bounded with tanh to (L-1)/2 (with a half-step
offset for even L, so z = 0 lands on the centre code), rounded with a straight-through
gradient, and normalised to [-1, 1]. The codebook is the implicit product of the levels.

Shapes: codes/latents are channel-first (B, D, F); indices are (B, F).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def round_ste(z: Tensor) -> Tensor:
    """Round with a straight-through gradient (identity in the backward pass)."""
    return z + (z.round() - z).detach()


class FSQ(nn.Module):
    """Finite scalar quantizer over `len(levels)` channels.

    Args:
        levels: number of levels per dimension, e.g. [8, 5, 5, 5] (1000 codes).
        eps: keeps tanh's bound strictly inside the outermost rounding intervals.
    """

    def __init__(self, levels: list[int], eps: float = 1e-3):
        super().__init__()
        if not levels or min(levels) < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.levels_list = [int(v) for v in levels]
        self.eps = eps
        lv = torch.tensor(self.levels_list, dtype=torch.int64)
        basis = torch.cumprod(torch.tensor([1] + self.levels_list[:-1], dtype=torch.int64), 0)
        self.register_buffer("_levels", lv, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels_list)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels_list)

    def _col(self, t: Tensor, like: Tensor) -> Tensor:
        return t.to(like.device, like.dtype).view(1, -1, 1)

    def bound(self, z: Tensor) -> Tensor:
        """Squash (B, D, F) latents into (-(L-1)/2 - offset, (L-1)/2 - offset) per dimension."""
        levels = self._col(self._levels, z)
        half_l = (levels - 1) * (1 + self.eps) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: Tensor) -> Tensor:
        """Quantize (B, D, F) latents to normalised codes in [-1, 1] (fp32, straight-through)."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            half_width = self._col(self._levels // 2, z)
            return round_ste(self.bound(z)) / half_width

    def codes_to_level_indices(self, codes: Tensor) -> Tensor:
        """(B, D, F) normalised codes -> per-dimension level indices in [0, L)."""
        half_width = self._col(self._levels // 2, codes.float())
        return (codes.float() * half_width + half_width).round().long()

    def level_indices_to_codes(self, level_idx: Tensor) -> Tensor:
        """(B, D, F) level indices -> normalised codes (fp32)."""
        half_width = self._col(self._levels // 2, level_idx.float())
        return (level_idx.float() - half_width) / half_width

    def codes_to_indices(self, codes: Tensor) -> Tensor:
        """(B, D, F) codes -> (B, F) integer indices (mixed radix, first dim least significant)."""
        level_idx = self.codes_to_level_indices(codes)
        return (level_idx * self._basis.view(1, -1, 1)).sum(dim=1)

    def indices_to_level_indices(self, indices: Tensor) -> Tensor:
        """(B, F) indices -> (B, D, F) level indices."""
        idx = indices.long().unsqueeze(1)
        return (idx // self._basis.view(1, -1, 1)) % self._levels.view(1, -1, 1)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """(B, F) integer indices -> (B, D, F) normalised codes (fp32)."""
        return self.level_indices_to_codes(self.indices_to_level_indices(indices))

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D, F) latents -> (codes (B, D, F), indices (B, F))."""
        codes = self(z)
        return codes, self.codes_to_indices(codes)


def code_usage(indices: Tensor, codebook_size: int) -> dict[str, float]:
    """Utilisation statistics of integer codes (any shape).

    Returns:
        used_fraction: distinct codes seen / codebook size.
        perplexity: exp(entropy) of the empirical code distribution.
        entropy_bits: entropy in bits per code (headroom for entropy coding vs log2(size)).
    """
    flat = indices.reshape(-1).long()
    if flat.numel() == 0:
        return {"used_fraction": 0.0, "perplexity": 0.0, "entropy_bits": 0.0}
    counts = torch.bincount(flat, minlength=codebook_size).double()
    p = counts[counts > 0] / flat.numel()
    entropy = float(-(p * p.log()).sum())
    return {
        "used_fraction": float((counts > 0).sum()) / codebook_size,
        "perplexity": math.exp(entropy),
        "entropy_bits": entropy / math.log(2),
    }
