"""Tokens back to audio: a token directory (every utterance) or one (stages, frames) .npy array."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fsq_audio import audio
from fsq_audio.errors import FsqAudioError, ModelError
from fsq_audio.models.codec import Codec
from fsq_audio.tokens import shards as fmt


def codec_for_tokens(meta: dict, model: str | os.PathLike | Codec | None, device: str = "cpu") -> Codec:
    """The codec to decode a token directory with (default: the installed model named in meta)."""
    if isinstance(model, Codec):
        codec = model
    elif model is None:
        name = str(meta["model_id"]).rsplit("-", 1)[0]
        try:
            codec = Codec.from_pretrained(name, device=device)
        except ModelError:
            raise ModelError(f"tokens were made by model {meta['model_id']}, which is not installed; "
                             "pass --model DIR") from None
    else:
        codec = Codec.from_pretrained(str(model), device=device)
    check_model(meta, codec)
    return codec


def check_model(meta: dict, codec: Codec) -> None:
    """Refuse a codec other than the one that made the tokens."""
    if meta["model_id"] != codec.model_id:
        raise ModelError(f"tokens were made with model {meta['model_id']}, but the loaded model is "
                         f"{codec.model_id}; pass the matching --model")


def check_tokens(tokens: np.ndarray, codec: Codec, name: str) -> np.ndarray:
    """Validate codes of shape (stages, frames) or (frames,) and return them as int64 (stages, frames)."""
    tokens = np.asarray(tokens)
    if not np.issubdtype(tokens.dtype, np.integer):
        raise FsqAudioError(f"{name}: tokens must be integers, got {tokens.dtype}")
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise FsqAudioError(f"{name}: expected tokens of shape (stages, frames), got {tokens.shape}")
    if not 1 <= tokens.shape[0] <= codec.num_stages:
        raise FsqAudioError(f"{name}: {tokens.shape[0]} stages, the model has 1..{codec.num_stages}")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= codec.codebook_size:
        raise FsqAudioError(f"{name}: codes out of range 0..{codec.codebook_size - 1} (found {lo}..{hi})")
    return tokens.astype(np.int64)


def decode_tokens(tokens: np.ndarray, codec: Codec) -> np.ndarray:
    """(stages, frames) int codes -> (1, frames * hop) float32 audio at the codec's rate."""
    y = codec.decode(torch.from_numpy(tokens)[None])
    return y[0].cpu().numpy()


def detokenize_array(src: str | os.PathLike, dst: str | os.PathLike, codec: Codec, force: bool = False) -> None:
    """Decode one .npy array of codes (e.g. from a TTS model) to an audio file."""
    dst = Path(dst)
    _check_output(dst, force)
    try:
        arr = np.load(src, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FsqAudioError(f"{src}: not a readable .npy array ({' '.join(str(exc).split())})") from None
    audio.save(dst, decode_tokens(check_tokens(arr, codec, str(src)), codec), codec.sample_rate)


def detokenize_dir(root: str | os.PathLike, out: str | os.PathLike, codec: Codec, force: bool = False,
                   on_done: Callable[[str], None] | None = None) -> list[str]:
    """Decode every utterance of a token directory to `out/<id>.wav`.

    Returns:
        One-line messages of the utterances that failed (existing outputs without `force`).
    """
    root, out = Path(root), Path(out)
    meta = fmt.load_meta(root)
    check_model(meta, codec)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for uid, tokens in fmt.load(root):
        try:
            dst = out / f"{safe_name(uid)}.wav"
            _check_output(dst, force)
            audio.save(dst, decode_tokens(check_tokens(tokens, codec, uid), codec), codec.sample_rate)
        except FsqAudioError as exc:
            failed.append(str(exc))
        if on_done is not None:
            on_done(uid)
    return failed


def safe_name(uid: str) -> str:
    """A file name for an utterance id (path separators become '_')."""
    name = uid.replace("/", "_").replace("\\", "_")
    if not name or name in (".", ".."):
        raise FsqAudioError(f"utterance id {uid!r} cannot be a file name")
    return name


def _check_output(dst: Path, force: bool) -> None:
    if dst.exists() and not force:
        raise FsqAudioError(f"{dst}: exists (use --force to overwrite)")
