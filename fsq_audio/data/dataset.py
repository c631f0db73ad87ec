"""Training data: fixed-length random crops of speech files.

Rows come from manifests, folders or files (`fsq_audio.data.manifest.load_rows`). Crops are
seeded by (seed, epoch, index), so an epoch's data is the same on every run, on resume, with
any number of DataLoader workers, and under accelerate's batch sharding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fsq_audio import audio
from fsq_audio.data.manifest import load_rows
from fsq_audio.errors import AudioError


def normalize(x: np.ndarray, mode: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Level-normalise (..., T) audio: "peak" (to a random peak in [0.3, 0.95] when `rng` is given,
    else 0.9), "loudness" (RMS to a random -30..-16 dBFS, else -23), or "none"."""
    if mode == "none":
        return x
    if mode == "peak":
        ref = float(np.abs(x).max())
        target = rng.uniform(0.3, 0.95) if rng is not None else 0.9
    elif mode == "loudness":
        ref = float(np.sqrt(np.mean(np.square(x))))
        target = 10 ** ((rng.uniform(-30, -16) if rng is not None else -23.0) / 20)
    else:
        raise ValueError(f"unknown normalize mode {mode!r}")
    y = x * (target / ref) if ref > 1e-5 else x
    return np.clip(y, -1.0, 1.0)


class SegmentDataset(Dataset):
    """Random `segment_samples`-long mono crops at `sample_rate`, as (1, segment_samples) tensors.

    Args:
        sources: manifests (.jsonl), folders or audio files.
        sample_rate: model rate; files are resampled (soxr) and downmixed.
        segment_samples: crop length; shorter files are zero-padded at the end.
        min_seconds: files shorter than this are skipped.
        normalize: "peak" | "loudness" | "none" level normalisation with random gain.
        cache: decode every file once and keep it in RAM as int16 (fast epochs on CPU).
        seed: base seed of the epoch permutation and the crops.
    """

    def __init__(self, sources: Sequence[str], sample_rate: int, segment_samples: int, min_seconds: float = 0.0,
                 normalize: str = "peak", cache: bool = False, seed: int = 0):
        rows = [r for s in sources for r in load_rows(s)]
        self.rows = [r for r in rows if r.get("duration", math.inf) >= min_seconds]
        if not self.rows:
            raise AudioError(f"no usable audio in {', '.join(map(str, sources))} (min {min_seconds} s)")
        self.sample_rate, self.segment_samples = sample_rate, segment_samples
        self.normalize_mode, self.seed, self.epoch = normalize, seed, 0
        self._cache: list[np.ndarray] | None = None
        if cache:
            from tqdm import tqdm

            rows = tqdm(self.rows, desc="decoding training audio into RAM", unit="file", mininterval=5)
            self._cache = [self._decode(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch: it fixes the order (permutation) and every crop."""
        self.epoch = epoch

    def _decode(self, row: dict) -> np.ndarray:
        x, _ = audio.load(row["path"], self.sample_rate)
        return (np.clip(x[0], -1, 1) * 32767).astype(np.int16)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def order(self) -> np.ndarray:
        """This epoch's permutation of rows."""
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.rows))

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = self._rng(index)
        row_index = int(self.order()[index])
        x = self._crop(row_index, rng)
        x = normalize(x, self.normalize_mode, rng)
        return torch.from_numpy(audio.fit_length(x[None], self.segment_samples).astype(np.float32))

    def _crop(self, row_index: int, rng: np.random.Generator) -> np.ndarray:
        if self._cache is not None:
            full = self._cache[row_index]
            start = int(rng.integers(0, max(1, len(full) - self.segment_samples + 1)))
            return full[start: start + self.segment_samples].astype(np.float32) / 32767
        row = self.rows[row_index]
        sr_file = int(row.get("sample_rate") or audio.info(row["path"]).sample_rate)
        n_file = int(round(row.get("duration", 0) * sr_file)) or audio.info(row["path"]).frames
        want = math.ceil(self.segment_samples * sr_file / self.sample_rate) + 64
        start = int(rng.integers(0, max(1, n_file - want + 1)))
        x, _ = audio.load(row["path"], self.sample_rate, start=start, frames=want)
        return x[0, : self.segment_samples]


class ValidSet(Dataset):
    """Fixed validation clips: the first `seconds` of the first `items` rows (deterministic)."""

    def __init__(self, sources: Sequence[str], sample_rate: int, items: int, seconds: float):
        rows = sorted((r for s in sources for r in load_rows(s)), key=lambda r: r["path"])
        step = max(1, len(rows) // max(1, items))
        self.rows = rows[::step][:items]
        self.sample_rate, self.samples = sample_rate, int(seconds * sample_rate)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        x, _ = audio.load(self.rows[index]["path"], self.sample_rate)
        x = normalize(x[:, : self.samples], "peak")
        return torch.from_numpy(x.astype(np.float32))  # (1, T) variable length
