"""Audio I/O: load, downmix, resample, save. The only module that touches audio files.

Arrays are float32 numpy of shape (channels, samples) unless a docstring says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from fsq_audio.errors import AudioError
from fsq_audio.fileio import atomic_path

#: File endings that folder scans pick up.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au")


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header alone."""

    path: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of an audio file. Raises AudioError with the file named."""
    path = str(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not os.path.isfile(path):  # a FIFO or device would block or never end
        raise AudioError(f"{path}: not a regular file")
    try:
        i = sf.info(path)
    except Exception as exc:  # soundfile raises RuntimeError / LibsndfileError / TypeError
        raise AudioError(f"{path}: not a readable audio file ({_one_line(exc)})") from None
    return AudioInfo(path=path, sample_rate=int(i.samplerate), channels=int(i.channels), frames=int(i.frames))


def check_finite(x: np.ndarray, path: str) -> None:
    """Raise AudioError if `x` holds NaN or Inf samples (we refuse rather than guess)."""
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise AudioError(f"{path}: {bad} NaN/Inf samples; clean the file before compressing")


def load(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    mono: bool = True,
    start: int = 0,
    frames: int = -1,
) -> tuple[np.ndarray, int]:
    """Load an audio file as float32.

    Args:
        path: anything libsndfile reads (wav, flac, ogg/vorbis/opus, mp3, 8-32 bit, float).
        sample_rate: resample to this rate (soxr, high quality); None keeps the file's rate.
        mono: average channels into one.
        start, frames: read a slice (in the file's own sample rate); -1 reads to the end.

    Returns:
        (audio, rate): audio of shape (channels, samples), channels == 1 when mono.

    Raises:
        AudioError: missing, unreadable, empty, or NaN/Inf-containing file (one line, file named).
    """
    path = str(path)
    meta = info(path)
    try:
        x, sr = sf.read(path, dtype="float32", always_2d=True, start=start, frames=frames)
    except Exception as exc:
        raise AudioError(f"{path}: cannot decode audio ({_one_line(exc)})") from None
    x = np.ascontiguousarray(x.T)  # (C, T)
    if x.shape[1] == 0:
        if start == 0 and meta.frames == 0:
            raise AudioError(f"{path}: holds no audio samples")
        return x[:1] if mono else x, int(sr)
    check_finite(x, path)
    if mono and x.shape[0] > 1:
        x = x.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != sr:
        x = resample(x, sr, sample_rate)
        sr = sample_rate
    return x, int(sr)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (channels, samples) float32 audio with soxr (VHQ)."""
    if sr_in == sr_out:
        return x
    if sr_in <= 0 or sr_out <= 0:
        raise AudioError(f"invalid sample rates {sr_in} -> {sr_out}")
    y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="VHQ")
    return np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, x.shape[0]).T)


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad (channels, samples) audio to `length` samples."""
    if x.shape[-1] >= length:
        return x[..., :length]
    pad = np.zeros(x.shape[:-1] + (length - x.shape[-1],), dtype=x.dtype)
    return np.concatenate([x, pad], axis=-1)


def save(path: str | os.PathLike, x: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write (channels, samples) audio atomically; samples are clipped to [-1, 1] for PCM."""
    path = Path(path)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower(), "WAV")
    with atomic_path(path, suffix=path.suffix) as tmp:
        sf.write(str(tmp), x.T, sample_rate, subtype=subtype, format=fmt)


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """All audio files below `root` (sorted, by AUDIO_EXTENSIONS), or [root] for a file."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise AudioError(f"{root}: no such file or directory")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
