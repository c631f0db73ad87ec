"""Manifests: JSON-lines files with one audio file per line.

Row keys: ``id`` (str), ``path`` (str, absolute or relative to the manifest's folder),
``duration`` (seconds), ``sample_rate`` (Hz); optional ``speaker``, ``text``, ``channels``.
"""

from __future__ import annotations

import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from fsq_audio import audio
from fsq_audio.errors import AudioError, ConfigError
from fsq_audio.fileio import atomic_write_text


def row_for_file(path: str | os.PathLike, root: str | os.PathLike | None = None) -> dict:
    """Manifest row of one audio file (header read only). Raises AudioError if unreadable."""
    path = Path(path)
    meta = audio.info(path)
    rel = path.relative_to(root) if root is not None else Path(path.name)
    return {
        "id": rel.with_suffix("").as_posix().replace("/", "_"),
        "path": str(path.resolve()),
        "duration": round(meta.duration, 4),
        "sample_rate": meta.sample_rate,
        "channels": meta.channels,
    }


def scan_files(
    paths: list[Path],
    root: str | os.PathLike | None = None,
    jobs: int = 1,
    progress: bool = False,
    desc: str = "scan",
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Rows for `paths` (headers read in `jobs` threads, order kept) and (path, reason) for the rest.

    Args:
        paths: audio files.
        root: ids are the paths relative to `root` (``/`` -> ``_``), or file stems when None.
        jobs: worker threads; libsndfile releases the GIL, so threads scale on header reads.
        progress: show a tqdm bar on stderr (only when it is a terminal).
        desc: label of the bar.
    """

    def one(p: Path) -> tuple[dict | None, tuple[str, str] | None]:
        try:
            return row_for_file(p, root), None
        except AudioError as exc:
            return None, (str(p), str(exc))

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        results = list(tqdm(pool.map(one, paths), total=len(paths), desc=desc, unit="file",
                            disable=not progress or None, leave=False))
    rows = [r for r, _ in results if r is not None]
    bad = [b for _, b in results if b is not None]
    return rows, bad


def scan_folder(
    root: str | os.PathLike, jobs: int = 1, progress: bool = False
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Rows for every readable audio file below `root`, and (path, reason) for the rest."""
    root = Path(root)
    files = audio.find_audio_files(root)
    return scan_files(files, None if root.is_file() else root, jobs, progress, desc=root.name)


def write_manifest(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write rows as JSON lines, atomically."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines manifest; relative paths are resolved against its folder."""
    path = Path(path)
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if "path" not in row:
                raise ConfigError(f"{path}:{n}: row has no 'path'")
            p = Path(row["path"])
            row["path"] = str(p if p.is_absolute() else (path.parent / p).resolve())
            rows.append(row)
    return rows


def load_rows(source: str | os.PathLike) -> list[dict]:
    """Rows from a manifest (.jsonl/.json), a lhotse recordings manifest (.jsonl.gz),
    a folder (scanned) or a single audio file."""
    source = Path(source)
    if source.is_dir():
        return scan_folder(source)[0]
    if source.name.endswith((".jsonl.gz", ".json.gz")):
        from fsq_audio.data import lhotse_io

        return lhotse_io.read_lhotse(source)[0]
    if source.suffix in (".jsonl", ".json"):
        return read_manifest(source)
    if source.is_file():
        return [row_for_file(source)]
    raise AudioError(f"{source}: no such file or directory")


def total_hours(rows: list[dict]) -> float:
    """Summed duration of `rows` in hours."""
    return sum(float(r.get("duration", 0.0)) for r in rows) / 3600.0


def split_rows(rows: list[dict], valid_count: int) -> tuple[list[dict], list[dict]]:
    """Hold out about `valid_count` rows, chosen by a hash of their id (stable across runs).

    Returns:
        (train, valid), both in the input order; valid is empty when `valid_count` <= 0.
    """
    if valid_count <= 0 or not rows:
        return list(rows), []
    keyed = sorted(rows, key=lambda r: zlib.crc32(str(r["id"]).encode("utf-8")))
    held = {id(r) for r in keyed[: min(valid_count, len(rows) - 1)]}
    return [r for r in rows if id(r) not in held], [r for r in rows if id(r) in held]
