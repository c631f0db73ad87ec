"""A torch Dataset over token shards, for training a token language model.

Shards are memory-mapped (never copied into each DataLoader worker), so a corpus larger
than RAM trains from the page cache. Like `fsq_audio.data.dataset.SegmentDataset`, random
crops are seeded by (seed, epoch, index): an epoch gives the same items on every run, on
resume, with any number of workers, and under accelerate's batch sharding.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fsq_audio.errors import FsqAudioError
from fsq_audio.tokens import shards as fmt


class TokenDataset(Dataset):
    """Fixed-length crops of token sequences, as LongTensors of shape (stages, segment_frames).

    Args:
        root: token directory written by `fsq-audio tokenize`.
        segment_frames: crop length in frames; shorter utterances are right-padded with
            `pad_value`. None returns whole utterances (variable length; sequential only).
        stages: keep the first `stages` residual stages (default: all stored).
        random_crop: True: one item per utterance, in a seeded per-epoch permutation, cropped at
            a seeded random start. False: every utterance cut into consecutive segments, in
            index order (each frame once; for validation).
        seed: base seed of the permutation and the crops.
        min_frames: utterances shorter than this are left out.
        pad_value: fill of padded positions (-1: an `ignore_index` for cross-entropy).
    """

    def __init__(self, root: str | os.PathLike, segment_frames: int | None, stages: int | None = None,
                 random_crop: bool = True, seed: int = 0, min_frames: int = 1, pad_value: int = -1):
        self.root = Path(root)
        self.meta = fmt.load_meta(self.root)
        self.stages = fmt.select_stages(stages, int(self.meta["stages"]))
        if segment_frames is not None and segment_frames < 1:
            raise FsqAudioError(f"segment_frames must be >= 1, got {segment_frames}")
        if segment_frames is None and random_crop:
            random_crop = False
        self.segment_frames, self.random_crop = segment_frames, random_crop
        self.seed, self.epoch, self.pad_value = seed, 0, pad_value
        self.paths = fmt.shard_paths(self.root, self.meta)
        ids, where = [], []
        for s, path in enumerate(self.paths):
            shard = fmt.read_shard(path, tokens=False)
            keep = np.nonzero(shard.frames >= min_frames)[0]
            ids += [str(shard.ids[i]) for i in keep]
            where += [(s, int(shard.offsets[i]), int(shard.frames[i])) for i in keep]
        if not where:
            raise FsqAudioError(f"{self.root}: no utterance of at least {min_frames} frames")
        self.ids = ids
        self.where = np.array(where, dtype=np.int64).reshape(-1, 3)  # (shard, offset, frames)
        self.items = self._sequential_items() if not random_crop else None
        self._tokens: dict[int, np.ndarray] = {}

    def _sequential_items(self) -> np.ndarray:
        """(utterance, start) of every consecutive segment."""
        if self.segment_frames is None:
            return np.stack([np.arange(len(self.where)), np.zeros(len(self.where), dtype=np.int64)], 1)
        items = [(u, start) for u, (_, _, n) in enumerate(self.where)
                 for start in range(0, int(n), self.segment_frames)]
        return np.array(items, dtype=np.int64).reshape(-1, 2)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_tokens"] = {}  # memory maps are reopened in each worker, never pickled
        return state

    def __len__(self) -> int:
        return len(self.where) if self.random_crop else len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch: it fixes the order (permutation) and every crop."""
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """This epoch's permutation of utterances (random crops)."""
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.where))

    def utterance(self, u: int) -> np.ndarray:
        """(stages, frames) tokens of utterance `u` (stored dtype; memory-mapped view)."""
        s, offset, n = (int(v) for v in self.where[u])
        if s not in self._tokens:
            self._tokens[s] = fmt.read_shard(self.paths[s], mmap=True).tokens
        return self._tokens[s][: self.stages, offset: offset + n]

    def __getitem__(self, index: int) -> torch.Tensor:
        if index < 0 or index >= len(self):
            raise IndexError(index)
        if self.random_crop:
            u = int(self.order()[index])
            n = int(self.where[u, 2])
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, max(1, n - self.segment_frames + 1)))
        else:
            u, start = (int(v) for v in self.items[index])
        tokens = self.utterance(u)
        seg = tokens.shape[1] - start if self.segment_frames is None else self.segment_frames
        crop = tokens[:, start: start + seg].astype(np.int64)
        if crop.shape[1] < seg:
            crop = np.pad(crop, ((0, 0), (0, seg - crop.shape[1])), constant_values=self.pad_value)
        return torch.from_numpy(crop)

    def item_id(self, index: int) -> str:
        """Utterance id of item `index` (this epoch)."""
        u = int(self.order()[index]) if self.random_crop else int(self.items[index, 0])
        return self.ids[u]
