"""Frame <-> symbol mapping, the summed frame embedding and the per-frame depth head.

A frame of `num_stages` residual codes becomes N = num_stages * n symbols, stage-major: with
the factorised layout the n = len(levels) FSQ level indices of each code (first FSQ dimension
first, as in `FSQ.indices_to_level_indices`), otherwise the code itself (n = 1).

The depth head predicts symbol j of a frame from the frame's context vector h (from the
transformer) and the symbols i < j of the same frame:

    z_j = MLP(gelu(A_j LN(h) + b_j + sum_{i<j} C_i[s_i]))     p(s_j | h, s_<j) = softmax(W_j z_j + c_j)

so p(frame) = prod_j p(s_j | h, s_<j) is exact (no independence assumption between levels or
stages), and each categorical has only max(levels) outcomes with the factorised layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsq_audio.lm.config import LMConfig


def _basis(alphabets: list[int], device: torch.device) -> tuple[Tensor, Tensor]:
    lv = torch.tensor(alphabets, dtype=torch.int64, device=device)
    basis = torch.cumprod(torch.tensor([1] + alphabets[:-1], dtype=torch.int64, device=device), 0)
    return lv, basis


def codes_to_symbols(codes: Tensor, stage_alphabets: list[int]) -> Tensor:
    """(B, S, T) codes -> (B, T, S * n) symbols (mixed radix, first dimension least significant)."""
    b, s, t = codes.shape
    lv, basis = _basis(stage_alphabets, codes.device)
    sym = (codes.long().unsqueeze(-1) // basis) % lv  # (B, S, T, n)
    return sym.permute(0, 2, 1, 3).reshape(b, t, s * len(stage_alphabets))


def symbols_to_codes(symbols: Tensor, stage_alphabets: list[int]) -> Tensor:
    """(B, T, S * n) symbols -> (B, S, T) codes (inverse of `codes_to_symbols`)."""
    b, t, m = symbols.shape
    n = len(stage_alphabets)
    _, basis = _basis(stage_alphabets, symbols.device)
    codes = (symbols.long().view(b, t, m // n, n) * basis).sum(-1)  # (B, T, S)
    return codes.permute(0, 2, 1).contiguous()


class SymbolEmbedding(nn.Module):
    """One embedding row per (symbol position, value): (..., N) symbols -> (..., N, dim)."""

    def __init__(self, alphabets: list[int], dim: int):
        super().__init__()
        self.table = nn.Embedding(sum(alphabets), dim)
        offsets = torch.cumsum(torch.tensor([0] + alphabets[:-1], dtype=torch.int64), 0)
        self.register_buffer("offsets", offsets, persistent=False)

    def forward(self, symbols: Tensor, start: int = 0) -> Tensor:
        """Embed symbols of positions start .. start + N - 1."""
        n = symbols.shape[-1]
        return self.table(symbols.long() + self.offsets[start: start + n])


class DepthHead(nn.Module):
    """Predicts a frame's symbols one by one from the context vector h (see module docstring).

    The first hidden layer is additive in its inputs, so the expensive part runs once per
    frame (`frame_context`: one linear map of h to every symbol's pre-activation) and each
    symbol costs only embedding-row additions, the remaining `depth_layers - 1` hidden layers
    and a (depth_hidden x A_j) output map:

        z_j = MLP(gelu(A_j LN(h) + b_j + sum_{i<j} C_i[s_i]))    logits_j = W_j z_j + c_j
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config
        self.alphabets = config.alphabets
        n, hidden = len(self.alphabets), config.depth_hidden
        self.norm = nn.LayerNorm(config.dim)
        self.context = nn.Linear(config.dim, n * hidden)
        self.embed = SymbolEmbedding(self.alphabets, hidden)
        self.blocks = nn.ModuleList(nn.Sequential(
            nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
            for _ in range(config.depth_layers - 1))
        amax = max(self.alphabets)
        self.out_weight = nn.Parameter(torch.randn(n, hidden, amax) * 0.02)
        self.out_bias = nn.Parameter(torch.zeros(n, amax))
        valid = torch.arange(amax).view(1, -1) < torch.tensor(self.alphabets).view(-1, 1)
        self.register_buffer("valid", valid, persistent=False)  # (N, Amax)

    def _hidden(self, pre: Tensor) -> Tensor:
        z = F.gelu(pre)
        for block in self.blocks:
            z = z + block(z)
        return z

    def frame_context(self, h: Tensor) -> Tensor:
        """(..., dim) frame contexts -> (..., N, depth_hidden) per-symbol pre-activations."""
        return self.context(self.norm(h)).unflatten(-1, (len(self.alphabets), -1))

    def forward(self, h: Tensor, symbols: Tensor) -> Tensor:
        """Teacher-forced logits.

        Args:
            h: (B, T, dim) context of each frame.
            symbols: (B, T, N') the frame's symbols (N' <= N: a stage prefix).

        Returns:
            (B, T, N', Amax) logits; values beyond a symbol's alphabet are -inf.
        """
        n = symbols.shape[-1]
        e = self.embed(symbols)  # (B, T, N', hidden)
        prev = F.pad(e.cumsum(dim=2)[:, :, :-1], (0, 0, 1, 0))
        z = self._hidden(self.frame_context(h)[:, :, :n] + prev)
        logits = torch.einsum("btnh,nha->btna", z, self.out_weight[:n]) + self.out_bias[:n]
        return logits.masked_fill(~self.valid[:n], float("-inf"))

    def step(self, context: Tensor, prefix: Tensor) -> Tensor:
        """Logits of the next symbol of a frame.

        Args:
            context: (B, N, depth_hidden) the frame's `frame_context`.
            prefix: (B, j) symbols 0 .. j-1 of the frame already known.

        Returns:
            (B, A_j) logits of symbol j.
        """
        j = prefix.shape[-1]
        pre = context[:, j]
        if j:
            pre = pre + self.embed(prefix).sum(dim=1)
        z = self._hidden(pre)
        return (z @ self.out_weight[j] + self.out_bias[j])[:, : self.alphabets[j]]


class FrameEmbedding(nn.Module):
    """Transformer input of a frame: the sum of its symbols' embeddings (a stage prefix may be masked)."""

    def __init__(self, config: LMConfig):
        super().__init__()
        self.embed = SymbolEmbedding(config.alphabets, config.dim)
        self.symbols_per_stage = config.symbols_per_stage

    def forward(self, symbols: Tensor, n_stages: Tensor | None = None) -> Tensor:
        """(B, T, N') symbols -> (B, T, dim); `n_stages` (B,) keeps only each item's first stages."""
        e = self.embed(symbols)
        if n_stages is not None:
            keep = torch.arange(symbols.shape[-1], device=symbols.device) // self.symbols_per_stage
            e = e * (keep.view(1, 1, -1, 1) < n_stages.view(-1, 1, 1, 1)).to(e.dtype)
        return e.sum(dim=2)
