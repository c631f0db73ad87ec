"""Speech tokens for TTS / LM training: batched, resumable extraction into shards, and loading.

    >>> from fsq_audio import tokens
    >>> for uid, codes in tokens.load("tokens/"):      # codes: (stages, frames) uint16
    ...     ...
    >>> ds = tokens.TokenDataset("tokens/", segment_frames=500)   # LongTensor (stages, 500) items

CLI: `fsq-audio tokenize INPUT -o OUT` and `fsq-audio detokenize OUT -o wavs/`. The shard
format is documented in `fsq_audio.tokens.shards`.
"""

from fsq_audio.tokens.dataset import TokenDataset
from fsq_audio.tokens.extract import TokenizeResult, tokenize
from fsq_audio.tokens.shards import Shard, load, load_meta, read_shard

__all__ = ["Shard", "TokenDataset", "TokenizeResult", "load", "load_meta", "read_shard", "tokenize"]
