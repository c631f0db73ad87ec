"""Incremental (KV-cached) contexts over a growing frame sequence, with a sliding window.

Used by generation and by the arithmetic coder, which must see exactly the computation the
decoder will repeat: frames are pushed one at a time, and when the cache holds `max_frames`
positions it is rebuilt from BOS plus the last `max_frames // 2` frames (one parallel forward),
so arbitrarily long files need bounded memory and every context is one seen in training
(a crop starting at BOS, at most `max_frames` long).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fsq_audio.lm.model import KVCache, TokenLM


class FrameStream:
    """Contexts h of the next frame of B sequences as frames are appended.

    Args:
        lm: the model (its parameters' dtype and device are used).
        batch: number of sequences B.

    Attributes:
        h: (B, dim) context of the next frame (starts as the context after BOS).
        ctx: (B, N, depth_hidden) the depth head's per-symbol pre-activations for that frame.
    """

    def __init__(self, lm: TokenLM, batch: int):
        p = lm.bos
        self.lm, self.batch = lm, batch
        self.window = lm.config.max_frames
        self.keep = max(1, self.window // 2)
        self.cache = KVCache(lm.config, batch, self.window, p.dtype, p.device)
        self.history: list[Tensor] = []
        with torch.inference_mode():
            self._set(self._prime(None))

    def _set(self, h: Tensor) -> Tensor:
        self.h, self.ctx = h, self.lm.head.frame_context(h)
        return h

    def _bos(self) -> Tensor:
        return self.lm.bos.expand(self.batch, 1, -1)

    def _prime(self, recent: Tensor | None) -> Tensor:
        """Rebuild the cache from BOS + `recent` (B, P, N) frames; returns the last context."""
        self.cache.reset()
        x = self._bos()
        if recent is not None:
            x = torch.cat([x, self.lm.frame_embed(recent)], dim=1)
        return self.lm.transformer(x, self.cache)[:, -1]

    @torch.inference_mode()
    def push(self, symbols: Tensor) -> Tensor:
        """Append one frame (B, N) of symbols; returns (and keeps in `h`) the next frame's context."""
        self.history.append(symbols)
        if len(self.history) > self.window:
            del self.history[0]
        if self.cache.pos >= self.window:
            return self._set(self._prime(torch.stack(self.history[-self.keep:], dim=1)))
        return self._set(self.lm.transformer(self.lm.frame_embed(symbols[:, None]), self.cache)[:, -1])

    @torch.inference_mode()
    def extend(self, frames: Tensor) -> Tensor:
        """Append (B, P, N) frames (a prompt): one forward while they fit the window."""
        if frames.shape[1] == 0:
            return self.h
        if self.cache.pos + frames.shape[1] <= self.window:
            self.history.extend(frames.unbind(1))
            del self.history[: max(0, len(self.history) - self.window)]
            return self._set(self.lm.transformer(self.lm.frame_embed(frames), self.cache)[:, -1])
        for t in range(frames.shape[1]):
            self.push(frames[:, t])
        return self.h
