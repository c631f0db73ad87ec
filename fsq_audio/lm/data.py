"""LM training data: token directories (`fsq-audio tokenize`) through `fsq_audio.tokens.TokenDataset`.

Items are (stages, segment_frames) LongTensors right-padded with -1; `split_padding` turns a
batch into codes plus valid lengths for `TokenLM.forward`. All directories of a run must come
from the same codec (model_id, levels, stages, frame rate), which becomes the LM's codec.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from fsq_audio.errors import ConfigError
from fsq_audio.tokens import TokenDataset, load_meta

META_KEYS = ("model_id", "frame_rate", "stages", "levels")


def read_meta(directories: Sequence[str]) -> dict:
    """meta.json of the first directory, after checking all come from the same codec."""
    if not directories:
        raise ConfigError("no token directories given (set data.train / data.valid)")
    metas = [load_meta(d) for d in directories]
    for d, meta in zip(directories, metas):
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise ConfigError(f"{d}/meta.json: missing key(s) {', '.join(missing)}")
        if any(meta[k] != metas[0][k] for k in META_KEYS):
            raise ConfigError(f"{d}: tokens of codec {meta['model_id']}, but {directories[0]} holds "
                              f"tokens of {metas[0]['model_id']}")
    return metas[0]


class EpochConcat(ConcatDataset):
    """ConcatDataset whose `set_epoch` reaches every part (seeded crops per epoch)."""

    def set_epoch(self, epoch: int) -> None:
        for ds in self.datasets:
            ds.set_epoch(epoch)


def train_dataset(directories: Sequence[str], segment_frames: int, min_frames: int, seed: int) -> EpochConcat:
    """Random crops: one per utterance and epoch, in a seeded per-epoch order, for every directory."""
    return EpochConcat([TokenDataset(d, segment_frames, random_crop=True, seed=seed + i, min_frames=min_frames)
                        for i, d in enumerate(directories)])


def valid_dataset(directories: Sequence[str], segment_frames: int, max_items: int = 0) -> Dataset:
    """Every frame once: consecutive segments of each utterance (optionally only the first items)."""
    ds = ConcatDataset([TokenDataset(d, segment_frames, random_crop=False) for d in directories])
    return Subset(ds, range(min(max_items, len(ds)))) if max_items else ds


def split_padding(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, S, T) codes padded with -1 at the end -> (codes with padding set to 0, lengths (B,))."""
    valid = batch[:, 0] >= 0
    return batch.clamp_min(0), valid.sum(dim=-1)
