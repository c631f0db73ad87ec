"""Token directories: shard format, atomic writing, reading, index and meta.

Layout of a token directory ``OUT`` (format version 1)::

    shard-00000.npz           uncompressed npz (np.savez), one per `shard_size` utterances:
        ids      (N,) unicode        utterance ids, in plan order (sorted by id)
        offsets  (N,) int64          first frame of each utterance within `tokens`
        frames   (N,) int64          frames of each utterance
        tokens   (S, total) uint     codes of all N utterances concatenated along frames;
                                     uint8 / uint16 / uint32: the smallest holding codebook_size - 1
    shard-00000.failed.jsonl  {"id", "path", "error"} of that shard's unreadable files (only if any)
    plan.json                 what the shards were made from (model, stages, shard size, ids hash);
                              a re-run must match it, so shards are never mixed across plans
    index.jsonl               one row per utterance: {"id", "shard", "offset", "frames",
                              "frame_rate", "stages", "model_id"}; "shard" is the file name
    meta.json                 {"model_id", "frame_rate", "sample_rate", "stages", "codebook_size",
                              "levels", "dtype", "num_utterances", "total_frames", ...}; written
                              last, so its presence means the directory is complete
    failed.jsonl              all unreadable inputs of the run (only if any)

A shard is written to a temporary file and renamed, so it exists complete or not at all.
Utterance u of a shard is ``tokens[:, offsets[u]: offsets[u] + frames[u]]``.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsq_audio.errors import ConfigError, FsqAudioError
from fsq_audio.fileio import atomic_path, atomic_write_text

FORMAT_VERSION = 1
META, INDEX, PLAN, FAILED = "meta.json", "index.jsonl", "plan.json", "failed.jsonl"
ARRAYS = ("ids", "offsets", "frames", "tokens")


def shard_name(k: int) -> str:
    """File name of shard `k`."""
    return f"shard-{k:05d}.npz"


def failed_name(k: int) -> str:
    """File name of the failure list of shard `k`."""
    return f"shard-{k:05d}.failed.jsonl"


def token_dtype(codebook_size: int) -> np.dtype:
    """Smallest unsigned dtype holding codes 0..codebook_size-1 (uint16 for 64000 codes)."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if codebook_size - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ConfigError(f"codebook size {codebook_size} does not fit in uint32")


@dataclass
class Shard:
    """The utterances of one shard; `tokens` is (S, total_frames)."""

    ids: np.ndarray
    offsets: np.ndarray
    frames: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def utterance(self, i: int) -> np.ndarray:
        """(S, frames[i]) tokens of utterance `i` (a view)."""
        start = int(self.offsets[i])
        return self.tokens[:, start: start + int(self.frames[i])]

    @classmethod
    def build(cls, ids: list[str], tokens: list[np.ndarray], stages: int, dtype: np.dtype) -> "Shard":
        """Concatenate per-utterance (S, F) tokens into one shard."""
        frames = np.array([t.shape[1] for t in tokens], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(np.int64) if len(frames) else frames
        cat = np.concatenate(tokens, axis=1) if tokens else np.zeros((stages, 0))
        return cls(np.array(ids, dtype=str), offsets, frames, cat.astype(dtype, copy=False))


def write_shard(path: str | os.PathLike, shard: Shard) -> None:
    """Write a shard atomically (temporary file, fsync, rename).

    The file is what `np.savez` writes, but with fixed zip timestamps, so equal tokens give
    byte-identical shards (checksums can be compared across runs and machines).
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
                for name in ARRAYS:
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                    with z.open(info, "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(getattr(shard, name)), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())


def read_shard(path: str | os.PathLike, mmap: bool = False, tokens: bool = True) -> Shard:
    """Read a shard; `mmap` maps `tokens` from the file instead of reading it, `tokens=False` skips it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, offsets, frames = z["ids"], z["offsets"], z["frames"]
            if not tokens:
                arr = np.zeros((0, 0), dtype=np.uint16)
            else:
                arr = _memmap_member(path, "tokens") if mmap else None
                arr = z["tokens"] if arr is None else arr
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise FsqAudioError(f"{path}: not a readable token shard ({' '.join(str(exc).split())})") from None
    return Shard(ids, offsets, frames, arr)


def _memmap_member(path: str | os.PathLike, name: str) -> np.ndarray | None:
    """Memory-map array `name` of an uncompressed npz (None if it is compressed)."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError("bad zip local header")
        n_name, n_extra = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + n_name + n_extra)
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
        offset = f.tell()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


# ---------------------------------------------------------------------------- metadata
def read_json(path: Path) -> dict | None:
    """A JSON file's content, or None if it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise FsqAudioError(f"{path}: not valid JSON ({exc.msg})") from None


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Write rows as JSON lines, atomically."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file ([] if it does not exist)."""
    with contextlib.suppress(FileNotFoundError):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    return []


def load_meta(root: str | os.PathLike) -> dict:
    """meta.json of a complete token directory (FsqAudioError if absent)."""
    root = Path(root)
    meta = read_json(root / META)
    if meta is None:
        raise FsqAudioError(f"{root}: no {META}: not a token directory, or tokenization is unfinished "
                            "(re-run `fsq-audio tokenize` to complete it)")
    if meta.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise FsqAudioError(f"{root}: token format {meta['format_version']} is newer than this fsq_audio reads")
    return meta


def shard_paths(root: str | os.PathLike, meta: dict | None = None) -> list[Path]:
    """The shard files of a complete token directory, in order."""
    meta = load_meta(root) if meta is None else meta
    return [Path(root) / shard_name(k) for k in range(int(meta["num_shards"]))]


def load(root: str | os.PathLike, stages: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Iterate (id, tokens (S, frames)) over a token directory, one shard in memory at a time.

    Args:
        root: a directory written by `fsq-audio tokenize`.
        stages: keep the first `stages` residual stages (default: all stored).

    Yields:
        Utterance id and its codes as a (stages, frames) array of the stored unsigned dtype,
        in index order (shard by shard, ids sorted within the run's plan).
    """
    meta = load_meta(root)
    n = select_stages(stages, int(meta["stages"]))
    for path in shard_paths(root, meta):
        shard = read_shard(path)
        for i, uid in enumerate(shard.ids):
            yield str(uid), np.array(shard.utterance(i)[:n])


def select_stages(stages: int | None, stored: int) -> int:
    """`stages` checked against the stored stage count (None: all)."""
    if stages is None:
        return stored
    if not 1 <= stages <= stored:
        raise ConfigError(f"stages must be in 1..{stored} (stored in the token directory), got {stages}")
    return stages
