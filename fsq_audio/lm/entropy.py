"""Arithmetic coding of codec tokens with the token LM's next-symbol probabilities.

Stream layout (one constriction queue/range-coder stream, 32-bit words, little endian):
    1. frame by frame, the symbols of the first k = min(stages, lm.num_stages) stages, in the
       LM's order (stage-major, FSQ level by level when factorised), each with the categorical
       the LM predicts given everything before it;
    2. the codes of stages k .. stages-1 (if any), stage-major, uniform over the codebook.

Encoder and decoder must build bit-identical categoricals. Both run the same code path
(`_frequencies` after `FrameStream.push`, one frame at a time, batch 1) in float64 on the CPU
with one thread, and the probabilities are turned into integer frequencies with a fixed
total and a floor of 1 before they reach the coder, so a symbol is never impossible. This is
exact on one machine type and torch build; docs/lm.md lists the limits.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from fsq_audio.errors import BitstreamError, FsqAudioError
from fsq_audio.lm.heads import codes_to_symbols, symbols_to_codes
from fsq_audio.lm.model import TokenLM
from fsq_audio.lm.stream import FrameStream

FREQ_TOTAL = 1 << 20  # integer frequencies of a categorical sum to at most this


@contextlib.contextmanager
def deterministic_cpu(threads: int = 1) -> Iterator[None]:
    """Run torch on a fixed number of CPU threads (restored afterwards)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(old)


def quantize_probabilities(logits: torch.Tensor) -> np.ndarray:
    """(A,) float64 logits -> (A,) integer frequencies (as float64), each >= 1, sum <= FREQ_TOTAL."""
    p = torch.softmax(logits.double(), dim=-1).numpy()
    return np.floor(p * (FREQ_TOTAL - len(p))) + 1.0


class LMEntropyCoder:
    """`fsq_audio.api.EntropyCoder` backed by a TokenLM.

    Args:
        lm: the model (copied to float64 on the CPU).
        lm_id: its identity (recorded in stream headers; decoding with another LM is refused).
        threads: torch threads during coding; encoder and decoder must use the same number.
    """

    def __init__(self, lm: TokenLM, lm_id: str, threads: int = 1):
        try:
            import constriction  # optional dependency (extra "lm")
        except ImportError:
            raise FsqAudioError("LM entropy coding needs constriction: pip install 'fsq-audio[lm]'") from None

        self._models = constriction.stream.model
        self._queue = constriction.stream.queue
        self.lm = copy.deepcopy(lm).double().cpu().eval()
        self.config = lm.config
        self.id = lm_id
        self.threads = threads
        self.last_bits = 0.0  # ideal code length (bits) of the last `encode`, from the coded frequencies

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, codec=None) -> "LMEntropyCoder":
        """Load an LM release; refuse it when `codec` (if given) is not the codec it was trained on."""
        from fsq_audio.lm.release import check_codec, load_lm

        lm, lm_id = load_lm(path)
        if codec is not None:
            check_codec(lm.config, codec.model_id)
        return cls(lm, lm_id)

    def _check(self, stages: int) -> int:
        if stages < 1:
            raise BitstreamError("stream has no stages")
        return min(stages, self.config.num_stages)

    def _frequencies(self, stream: FrameStream, prefix: torch.Tensor) -> np.ndarray:
        """Integer frequencies of the next symbol given the frame's known symbols (1, j)."""
        return quantize_probabilities(self.lm.head.step(stream.ctx, prefix)[0])

    def encode(self, indices: np.ndarray) -> bytes:
        """(S, F) int64 indices -> payload bytes."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 2 or idx.shape[1] < 1:
            raise ValueError(f"expected (stages, frames) indices, got shape {idx.shape}")
        if idx.min() < 0 or idx.max() >= self.config.codebook_size:
            raise ValueError("indices outside the codebook")
        k = self._check(idx.shape[0])
        enc = self._queue.RangeEncoder()
        self.last_bits = (idx.shape[0] - k) * idx.shape[1] * math.log2(self.config.codebook_size)
        with deterministic_cpu(self.threads):
            sym = codes_to_symbols(torch.from_numpy(idx[None, :k]), self.config.stage_alphabets)[0]  # (F, N)
            stream = FrameStream(self.lm, 1)
            for t in range(sym.shape[0]):
                if t:
                    stream.push(sym[t - 1: t])
                for j in range(sym.shape[1]):
                    freq = self._frequencies(stream, sym[t: t + 1, :j])
                    enc.encode(int(sym[t, j]), self._models.Categorical(freq, perfect=False))
                    self.last_bits -= math.log2(freq[sym[t, j]] / freq.sum())
        if idx.shape[0] > k:
            enc.encode(idx[k:].reshape(-1).astype(np.int32), self._models.Uniform(self.config.codebook_size))
        return enc.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, stages: int, frames: int) -> np.ndarray:
        """Payload bytes -> (stages, frames) int64 indices."""
        if len(payload) % 4 or frames < 1:
            raise BitstreamError("entropy-coded payload is not a whole number of 32-bit words")
        k = self._check(stages)
        dec = self._queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        n = k * self.config.symbols_per_stage
        sym = torch.zeros(frames, n, dtype=torch.int64)
        with deterministic_cpu(self.threads):
            stream = FrameStream(self.lm, 1)
            for t in range(frames):
                if t:
                    stream.push(sym[t - 1: t])
                for j in range(n):
                    freq = self._frequencies(stream, sym[t: t + 1, :j])
                    sym[t, j] = int(dec.decode(self._models.Categorical(freq, perfect=False)))
        out = np.empty((stages, frames), dtype=np.int64)
        out[:k] = symbols_to_codes(sym[None], self.config.stage_alphabets)[0].numpy()
        if stages > k:
            rest = dec.decode(self._models.Uniform(self.config.codebook_size), (stages - k) * frames)
            out[k:] = np.asarray(rest, dtype=np.int64).reshape(stages - k, frames)
        return out
