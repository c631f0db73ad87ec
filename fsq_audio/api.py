"""File-level compress/decompress with bounded memory (streaming read, windowed model, streaming write).

A 1-hour file never sits in memory at its original rate: audio is read in blocks, downmixed,
resampled with a streaming soxr resampler, encoded window by window, and the decoded audio is
resampled back and written block by block to a temporary file renamed at the end.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf
import soxr
import torch

from fsq_audio import audio, bitstream
from fsq_audio.bitstream import StreamHeader
from fsq_audio.errors import AudioError, BitstreamError, FsqAudioError, ModelError
from fsq_audio.fileio import atomic_path, atomic_write_bytes
from fsq_audio.models.codec import Codec, canonical_threads

BLOCK = 1 << 16  # samples read or written per block
MIN_INPUT_RATE = 1000  # Hz; a lower rate would turn a small file into hours of model-rate audio
MAX_CHANNELS = 64  # what a .fsqa header can record


class EntropyCoder(Protocol):
    """Turns (stages, frames) indices into bytes and back (e.g. the token LM's arithmetic coder)."""

    id: str

    def encode(self, indices: np.ndarray) -> bytes: ...

    def decode(self, payload: bytes, stages: int, frames: int) -> np.ndarray: ...


def _check_output(dst: Path, force: bool) -> None:
    if dst.exists() and not force:
        raise FsqAudioError(f"{dst}: exists (use --force to overwrite)")
    if dst.is_dir():
        raise FsqAudioError(f"{dst}: is a directory")


def iter_model_rate(path: str | os.PathLike, sample_rate: int) -> tuple[Iterator[np.ndarray], audio.AudioInfo]:
    """Stream a file as mono float32 blocks at `sample_rate`, checking samples as they come."""
    meta = audio.info(path)
    if meta.frames == 0:
        raise AudioError(f"{path}: holds no audio samples")
    if not MIN_INPUT_RATE <= meta.sample_rate <= bitstream.MAX_RATE:
        raise AudioError(f"{path}: sample rate {meta.sample_rate} Hz is outside "
                         f"{MIN_INPUT_RATE}..{bitstream.MAX_RATE} Hz")

    def blocks() -> Iterator[np.ndarray]:
        rs = soxr.ResampleStream(meta.sample_rate, sample_rate, 1, dtype="float32", quality="VHQ") \
            if meta.sample_rate != sample_rate else None
        try:
            with sf.SoundFile(str(path)) as f:
                while True:
                    x = f.read(BLOCK, dtype="float32", always_2d=True)
                    last = len(x) < BLOCK
                    audio.check_finite(x, str(path))
                    mono = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
                    out = rs.resample_chunk(mono, last=last) if rs is not None else mono
                    if len(out):
                        yield np.ascontiguousarray(out, dtype=np.float32)
                    if last:
                        return
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise AudioError(f"{path}: cannot decode audio ({' '.join(str(exc).split())})") from None

    return blocks(), meta


def encode_blocks(codec: Codec, blocks: Iterator[np.ndarray], stages: int | None = None,
                  batch_windows: int = 8) -> tuple[np.ndarray, int]:
    """Encode a stream of mono blocks at the codec's rate with canonical windows.

    Returns:
        (indices (S, F) int64, number of samples seen). Equal to `codec.encode` on the whole signal.
    """
    hop, win, ctx = codec.hop_length, codec.config.encode_window_frames, codec.encoder_context
    length, step = codec.encode_window_samples, win * hop
    buf = np.zeros(ctx * hop, dtype=np.float32)  # left context of the first window is silence
    seen, pending, out = 0, [], []

    def flush() -> None:
        if pending:
            w = torch.from_numpy(np.stack(pending)).unsqueeze(1)
            with canonical_threads(codec.device):  # same numerics as Codec.encode and tokenize
                out.extend(codec.encode_windows(one, stages).cpu() for one in w.split(1))
            pending.clear()

    for block in blocks:
        seen += len(block)
        buf = np.concatenate([buf, block])
        while len(buf) >= length:
            pending.append(buf[:length].copy())
            buf = buf[step:]
            if len(pending) == batch_windows:
                flush()
    if seen == 0:
        raise AudioError("no audio samples")
    n_frames = max(1, math.ceil(seen / hop))
    done = sum(o.shape[0] for o in out) + len(pending)
    while done * win < n_frames:
        pending.append(audio.fit_length(buf[None], length)[0])
        buf = buf[step:]
        done += 1
    flush()
    idx = torch.cat(out)  # (n_win, S, win)
    return idx.permute(1, 0, 2).reshape(idx.shape[1], -1)[:, :n_frames].numpy(), seen


def compress_file(src: str | os.PathLike, dst: str | os.PathLike, codec: Codec, stages: int | None = None,
                  force: bool = False, entropy_coder: EntropyCoder | None = None) -> dict:
    """Compress an audio file to .fsqa (atomically). Returns the header fields and byte sizes."""
    dst = Path(dst)
    _check_output(dst, force)
    n = codec.num_stages if stages is None else stages
    if not 1 <= n <= codec.num_stages:
        raise FsqAudioError(f"--stages must be in 1..{codec.num_stages}, got {n}")
    blocks, meta = iter_model_rate(src, codec.sample_rate)
    if meta.channels > MAX_CHANNELS:
        raise AudioError(f"{src}: {meta.channels} channels (a .fsqa file records at most {MAX_CHANNELS})")
    indices, samples = encode_blocks(codec, blocks, n)
    orig_samples = max(meta.frames, 0)
    decoded = samples * meta.sample_rate / codec.sample_rate
    if abs(orig_samples - decoded) > 0.005 * decoded + 512:  # the header's length lies (e.g. a cut mp3):
        orig_samples = round(decoded)  # keep what was decoded, within what `check_lengths` accepts
    header = StreamHeader(
        model_id=codec.model_id, sample_rate=codec.sample_rate, frames=int(indices.shape[1]), stages=n,
        levels=list(codec.config.levels), bits_per_code=codec.bits_per_code, samples=samples,
        orig_sample_rate=meta.sample_rate, orig_samples=orig_samples, orig_channels=meta.channels)
    if entropy_coder is not None:
        header.entropy, header.lm_id = "lm", entropy_coder.id
        data = bitstream.encode(header, payload=entropy_coder.encode(indices))
    else:
        data = bitstream.encode(header, indices)
    atomic_write_bytes(dst, data)
    return {**header.__dict__, "bytes": len(data), "indices": indices}


def check_model(header: StreamHeader, codec: Codec) -> None:
    """Refuse to decode a stream with a model other than the one that made it."""
    if header.model_id != codec.model_id:
        raise ModelError(f"stream was encoded with model {header.model_id}, "
                         f"but the loaded model is {codec.model_id}; pass the matching --model")
    if header.stages > codec.num_stages or list(header.levels) != list(codec.config.levels):
        raise ModelError("stream levels/stages do not fit the loaded model")


def check_lengths(header: StreamHeader, codec: Codec) -> None:
    """Refuse a header whose frame count, model-rate length and original length disagree.

    Decoding pads the output to `orig_samples`, so an unchecked header could demand any amount of output.
    """
    expected = header.samples * header.orig_sample_rate / max(header.sample_rate, 1)
    if (header.sample_rate != codec.sample_rate
            or header.frames != max(1, math.ceil(header.samples / codec.hop_length))
            or abs(header.orig_samples - expected) > 0.01 * expected + 1024):
        raise BitstreamError("header lengths are inconsistent (frames, samples and original length disagree)")


def model_for_stream(header: StreamHeader, model: str | os.PathLike | Codec | None) -> Codec:
    """The codec to decode `header` with: the given one, or the shipped model named in the header."""
    if isinstance(model, Codec):
        return model
    if model is None:
        name = header.model_id.rsplit("-", 1)[0]
        try:
            return Codec.from_pretrained(name)
        except ModelError:
            raise ModelError(f"stream was made by model {header.model_id}, which is not installed; "
                             "pass --model DIR") from None
    return Codec.from_pretrained(str(model))


def read_indices(src: str | os.PathLike, codec: Codec | None = None,
                 entropy_coder: EntropyCoder | None = None) -> tuple[StreamHeader, np.ndarray]:
    """Parse a .fsqa file into (header, indices (S, F)), decoding an entropy-coded payload."""
    header, body = bitstream.read(src)
    if codec is not None:
        check_model(header, codec)
        try:
            check_lengths(header, codec)
        except BitstreamError as exc:
            raise BitstreamError(f"{src}: {exc}") from None
    if header.entropy == "fixed":
        return header, body
    if entropy_coder is None:
        raise BitstreamError(f"{src}: entropy-coded with LM {header.lm_id}; pass --lm to decode it")
    if entropy_coder.id != header.lm_id:
        raise ModelError(f"{src}: stream was entropy-coded with LM {header.lm_id}, not {entropy_coder.id}")
    try:
        return header, entropy_coder.decode(body, header.stages, header.frames)
    except FsqAudioError:
        raise
    except Exception as exc:  # arithmetic decoder on a corrupt payload
        raise BitstreamError(f"{src}: corrupt entropy-coded payload ({type(exc).__name__})") from None


def decompress_file(src: str | os.PathLike, dst: str | os.PathLike, codec: Codec | str | None = None,
                    force: bool = False, sample_rate: int | None = None,
                    entropy_coder: EntropyCoder | None = None) -> StreamHeader:
    """Decode a .fsqa file to audio (atomically), restoring original rate, channels and length.

    `sample_rate` overrides the output rate (the length is scaled accordingly).
    """
    dst = Path(dst)
    _check_output(dst, force)
    if sample_rate is not None and not 1 <= sample_rate <= bitstream.MAX_RATE:
        raise FsqAudioError(f"--sample-rate must be in 1..{bitstream.MAX_RATE} Hz, got {sample_rate}")
    header, _ = bitstream.read(src)  # validate before loading any model
    codec = model_for_stream(header, codec)
    header, indices = read_indices(src, codec, entropy_coder)
    out_rate = sample_rate or header.orig_sample_rate
    out_len = round(header.orig_samples * out_rate / header.orig_sample_rate) if sample_rate else header.orig_samples
    pieces = _model_rate_pieces(codec, torch.from_numpy(np.asarray(indices))[None], header.samples)
    fmt = "FLAC" if dst.suffix.lower() == ".flac" else "WAV"
    with atomic_path(dst, suffix=dst.suffix) as tmp:
        with sf.SoundFile(str(tmp), "w", samplerate=out_rate, channels=header.orig_channels,
                          subtype="PCM_16", format=fmt) as f:
            _write_resampled(f, pieces, codec.sample_rate, out_rate, out_len, header.orig_channels)
    return header


def _model_rate_pieces(codec: Codec, indices: torch.Tensor, samples: int) -> Iterator[np.ndarray]:
    left = samples
    for piece in codec.iter_decode(indices):
        y = piece[0, 0, :left].cpu().numpy()
        left -= len(y)
        if len(y):
            yield y
        if left <= 0:
            return


def _write_resampled(f: sf.SoundFile, pieces: Iterator[np.ndarray], sr_in: int, sr_out: int,
                     total: int, channels: int) -> None:
    rs = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="VHQ") if sr_in != sr_out else None
    written = 0

    def emit(y: np.ndarray) -> None:
        nonlocal written
        y = np.clip(y[: total - written], -1.0, 1.0)
        if len(y):
            f.write(np.repeat(y[:, None], channels, axis=1))
            written += len(y)

    for y in pieces:
        emit(rs.resample_chunk(y, last=False) if rs is not None else y)
    if rs is not None:
        emit(rs.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    while written < total:
        emit(np.zeros(min(BLOCK, total - written), dtype=np.float32))
