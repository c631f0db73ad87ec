"""The .fsqa container: magic, version, JSON header, packed indices, CRC32.

Layout (little endian):
    b"FSQA"            4 bytes magic
    version            1 byte (FORMAT_VERSION)
    header_len         4 bytes, uint32
    header             header_len bytes of UTF-8 JSON (see StreamHeader)
    payload            ceil(stages * frames * bits_per_code / 8) bytes: indices, stage-major
                       (all frames of stage 0, then stage 1, ...), each code in bits_per_code
                       bits, least significant bit first
    crc32              4 bytes, uint32, CRC32 of header + payload

With entropy == "lm" the payload is an arithmetic-coded stream whose length the header gives
(`payload_bytes`). Any deviation raises BitstreamError with a one-line message.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from fsq_audio.errors import BitstreamError

MAGIC = b"FSQA"
FORMAT_VERSION = 1
MAX_HEADER = 1 << 16
MAX_RATE = 1 << 20  # Hz; higher sample rates in a header are corrupt (and overflow libsndfile)
_PREFIX = struct.Struct("<4sBI")


@dataclass
class StreamHeader:
    """Everything needed to decode a stream and restore the original audio."""

    model_id: str
    sample_rate: int
    frames: int
    stages: int
    levels: list[int]
    bits_per_code: int
    samples: int  # length at the model's rate
    orig_sample_rate: int
    orig_samples: int
    orig_channels: int
    entropy: str = "fixed"  # "fixed" | "lm"
    lm_id: str = ""
    payload_bytes: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    @property
    def duration(self) -> float:
        return self.orig_samples / self.orig_sample_rate if self.orig_sample_rate else 0.0

    def validate(self) -> None:
        """Raise BitstreamError if fields are inconsistent."""
        ints = ("sample_rate", "frames", "stages", "bits_per_code", "samples", "orig_sample_rate",
                "orig_samples", "orig_channels", "payload_bytes")
        for name in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise BitstreamError(f"header field {name} is invalid ({v!r})")
        if not isinstance(self.levels, list) or not self.levels or not all(
                isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= 1 << 16 for v in self.levels):
            raise BitstreamError(f"header field levels is invalid ({self.levels!r})")
        rates_ok = 0 < self.sample_rate <= MAX_RATE and 0 < self.orig_sample_rate <= MAX_RATE
        if not 1 <= self.stages <= 64 or not rates_ok:
            raise BitstreamError("header has an invalid stage count or sample rate")
        if self.bits_per_code != max(1, math.ceil(math.log2(self.codebook_size))):
            raise BitstreamError("header bits_per_code does not match its levels")
        if self.entropy not in ("fixed", "lm") or not isinstance(self.model_id, str):
            raise BitstreamError(f"header has an unknown entropy coder {self.entropy!r}")
        if self.orig_channels < 1 or self.orig_channels > 64:
            raise BitstreamError(f"header field orig_channels is invalid ({self.orig_channels})")
        if self.frames > (1 << 31) or self.samples > (1 << 40) or self.orig_samples > (1 << 40):
            raise BitstreamError("header sizes are implausibly large")


def packed_size(n_values: int, bits: int) -> int:
    """Bytes taken by `n_values` codes of `bits` bits."""
    return (n_values * bits + 7) // 8


def pack(values: np.ndarray, bits: int) -> bytes:
    """Pack non-negative integers (< 2**bits) LSB-first into bytes."""
    v = np.asarray(values, dtype=np.uint64).reshape(-1)
    bitarr = ((v[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bitarr.reshape(-1), bitorder="little").tobytes()


def unpack(data: bytes, n_values: int, bits: int) -> np.ndarray:
    """Inverse of `pack`: (n_values,) int64."""
    bitarr = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")[: n_values * bits]
    weights = (np.uint64(1) << np.arange(bits, dtype=np.uint64))
    return (bitarr.reshape(n_values, bits).astype(np.uint64) * weights).sum(axis=1).astype(np.int64)


def encode(header: StreamHeader, indices: np.ndarray | None = None, payload: bytes | None = None) -> bytes:
    """Serialise a stream from (stages, frames) indices (fixed packing) or a ready payload."""
    if payload is None:
        idx = np.asarray(indices)
        if idx.shape != (header.stages, header.frames):
            raise ValueError(f"indices shape {idx.shape} != ({header.stages}, {header.frames})")
        payload = pack(idx, header.bits_per_code)
    header.payload_bytes = len(payload)
    header.validate()
    head = json.dumps(asdict(header), separators=(",", ":"), sort_keys=True).encode()
    crc = zlib.crc32(payload, zlib.crc32(head))
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head + payload + struct.pack("<I", crc)


def _parse_header(data: bytes) -> tuple[StreamHeader, int]:
    if len(data) < _PREFIX.size or data[:4] != MAGIC:
        raise BitstreamError("not an .fsqa stream (bad magic bytes)")
    _, version, head_len = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unsupported .fsqa format version {version} (this fsq_audio reads {FORMAT_VERSION})")
    if head_len > MAX_HEADER or _PREFIX.size + head_len > len(data):
        raise BitstreamError("truncated or corrupt header")
    raw = data[_PREFIX.size: _PREFIX.size + head_len]
    try:
        meta = json.loads(raw.decode("utf-8"))
        known = {f.name for f in fields(StreamHeader)}
        if not isinstance(meta, dict) or set(meta) - known:
            raise ValueError("unknown fields")
        header = StreamHeader(**meta)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:  # RecursionError: deep nesting
        raise BitstreamError(f"corrupt header ({type(exc).__name__})") from None
    header.validate()
    return header, _PREFIX.size + head_len


def decode(data: bytes) -> tuple[StreamHeader, np.ndarray | bytes]:
    """Parse a stream. Returns (header, indices (stages, frames) int64) for fixed packing,
    or (header, payload bytes) for entropy-coded streams."""
    header, start = _parse_header(data)
    expected = header.payload_bytes
    if header.entropy == "fixed" and expected != packed_size(header.stages * header.frames, header.bits_per_code):
        raise BitstreamError("header payload size does not match its frame and stage counts")
    end = start + expected
    if len(data) < end + 4:
        raise BitstreamError(f"truncated stream ({len(data)} bytes, expected {end + 4})")
    if len(data) > end + 4:
        raise BitstreamError(f"{len(data) - end - 4} unexpected bytes after the end of the stream")
    payload = data[start:end]
    (crc,) = struct.unpack_from("<I", data, end)
    if crc != zlib.crc32(payload, zlib.crc32(data[_PREFIX.size:start])):
        raise BitstreamError("checksum mismatch: the stream is corrupt")
    if header.entropy != "fixed":
        return header, payload
    idx = unpack(payload, header.stages * header.frames, header.bits_per_code)
    if idx.size and idx.max() >= header.codebook_size:
        raise BitstreamError("stream holds codes outside the codebook")
    return header, idx.reshape(header.stages, header.frames)


def read(path: str | Path) -> tuple[StreamHeader, np.ndarray | bytes]:
    """Read and parse a .fsqa file; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise BitstreamError(f"{path}: no such file")
    if path.is_dir():
        raise BitstreamError(f"{path}: is a directory")
    if not path.is_file():  # a FIFO or device would block or never end
        raise BitstreamError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read(_PREFIX.size + MAX_HEADER)
            # never read more than the header promises (a huge file renamed .fsqa stays unread)
            header, start = _parse_header(data)
            extra = os.fstat(f.fileno()).st_size - (start + header.payload_bytes + 4)
            if extra > 0:
                raise BitstreamError(f"{extra} unexpected bytes after the end of the stream")
            data += f.read()
        return decode(data)
    except OSError as exc:
        raise BitstreamError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except BitstreamError as exc:
        raise BitstreamError(f"{path}: {exc}") from None


def read_header(path: str | Path) -> StreamHeader:
    """The header of a .fsqa file (the payload is checked too)."""
    return read(path)[0]
