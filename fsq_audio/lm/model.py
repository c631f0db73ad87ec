"""TokenLM: a GPT-style decoder-only transformer over codec frames, with a per-frame depth head.

Frame t's input is the summed embedding of frame t-1's symbols (a learned BOS vector for t=0);
the transformer (pre-norm, rotary positions, `scaled_dot_product_attention`) gives a context
h_t, and `DepthHead` turns h_t into p(frame t) symbol by symbol. `KVCache` makes incremental
decoding (generation, arithmetic coding) one transformer step per frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsq_audio.lm.config import LMConfig
from fsq_audio.lm.heads import DepthHead, FrameEmbedding, codes_to_symbols


class KVCache:
    """Pre-allocated keys/values of every layer: (layers, B, heads, length, head_dim) each."""

    def __init__(self, config: LMConfig, batch: int, length: int, dtype: torch.dtype, device: torch.device):
        shape = (config.layers, batch, config.heads, length, config.dim // config.heads)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = length
        self.pos = 0  # frames held

    def reset(self) -> None:
        self.pos = 0


def _rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate (B, H, T, hd) by position (cos/sin (T, hd/2)), half-split layout."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        self.heads, self.dropout = config.heads, config.dropout
        self.qkv = nn.Linear(config.dim, 3 * config.dim, bias=False)
        self.proj = nn.Linear(config.dim, config.dim, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None, layer: int) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        start = 0
        if cache is not None:
            start = cache.pos
            cache.k[layer, :, :, start: start + t] = k
            cache.v[layer, :, :, start: start + t] = v
            k, v = cache.k[layer, :, :, : start + t], cache.v[layer, :, :, : start + t]
        mask = None
        if start and t > 1:  # new frames after cached ones: causal within, full over the past
            mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(start)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=start == 0 and t > 1,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, config: LMConfig):
        super().__init__()
        hidden = int(config.mlp_ratio * config.dim)
        self.norm1, self.norm2 = nn.LayerNorm(config.dim), nn.LayerNorm(config.dim)
        self.attn = Attention(config)
        self.mlp = nn.Sequential(nn.Linear(config.dim, hidden), nn.GELU(), nn.Linear(hidden, config.dim))
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None, layer: int) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), cos, sin, cache, layer))
        return x + self.drop(self.mlp(self.norm2(x)))


class TokenLM(nn.Module):
    """Autoregressive model of a codec's first `config.num_stages` stages.

    Args:
        config: `LMConfig` with the codec fields filled (see `LMConfig.with_codec`).
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = config.validate()
        hd = config.dim // config.heads
        self.frame_embed = FrameEmbedding(config)
        self.bos = nn.Parameter(torch.randn(config.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.dim)
        self.head = DepthHead(config)
        inv_freq = config.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def transformer(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        """(B, T, dim) frame inputs -> (B, T, dim) contexts; with a cache, appends T frames to it."""
        start = cache.pos if cache is not None else 0
        if cache is not None and start + x.shape[1] > cache.length:
            raise ValueError(f"KV cache full ({cache.length} frames)")
        pos = torch.arange(start, start + x.shape[1], device=x.device, dtype=self.inv_freq.dtype)
        angles = pos[:, None] * self.inv_freq[None]
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, i)
        if cache is not None:
            cache.pos += x.shape[1]
        return self.norm(x)

    def inputs(self, symbols: Tensor, n_stages: Tensor | None = None) -> Tensor:
        """(B, T, N) symbols -> (B, T, dim) inputs: BOS, then the embeddings of frames 0 .. T-2."""
        bos = self.bos.to(self.frame_embed.embed.table.weight.dtype).expand(symbols.shape[0], 1, -1)
        return torch.cat([bos, self.frame_embed(symbols[:, :-1], n_stages)], dim=1)

    def logits(self, symbols: Tensor, n_stages: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (B, T, N, Amax) of (B, T, N) symbols (N: a stage prefix of the frame)."""
        h = self.transformer(self.inputs(symbols, n_stages))
        return self.head(h, symbols)

    def forward(self, codes: Tensor, lengths: Tensor | None = None,
                n_stages: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Negative log-likelihood of every symbol (the training forward).

        Args:
            codes: (B, S, T) codec indices, S >= 1 (stages beyond num_stages are ignored).
            lengths: (B,) valid frames per item (None: all T).
            n_stages: (B,) stages to model per item (stage dropout; None: all modelled).

        Returns:
            (nll (B, T, N) in nats, mask (B, T, N) bool of the symbols that count).
        """
        k = min(self.config.num_stages, codes.shape[1])
        symbols = codes_to_symbols(codes[:, :k], self.config.stage_alphabets)
        logits = self.logits(symbols, n_stages)
        nll = F.cross_entropy(logits.flatten(0, 2).float(), symbols.flatten(), reduction="none").view(symbols.shape)
        b, t, n = symbols.shape
        mask = torch.ones(b, t, n, dtype=torch.bool, device=codes.device)
        if lengths is not None:
            mask &= (torch.arange(t, device=codes.device).view(1, -1) < lengths.view(-1, 1)).unsqueeze(-1)
        if n_stages is not None:
            stage = torch.arange(n, device=codes.device) // self.config.symbols_per_stage
            mask &= (stage.view(1, -1) < n_stages.view(-1, 1)).unsqueeze(1)
        return nll, mask
