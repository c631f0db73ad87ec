"""Atomic file output: write to a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed and the
    target is left untouched, so an interrupted run never leaves a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (fsync before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_checksums(directory: str | os.PathLike, names: tuple[str, ...]) -> None:
    """Write `directory`/SHA256SUMS for the files `names` (sha256sum's format)."""
    directory = Path(directory)
    sums = "".join(f"{hashlib.sha256((directory / f).read_bytes()).hexdigest()}  {f}\n" for f in names)
    atomic_write_text(directory / "SHA256SUMS", sums)


def replace_dir(directory: str | os.PathLike, write: Callable[[Path], object],
                own_files: tuple[str, ...]) -> Path:
    """Replace `directory` with what `write(tmp)` puts into a fresh folder beside it, in one rename.

    A reader never sees half of it. Files of the old directory not named in `own_files` (a model
    card README.md, samples) are carried over, so re-exporting a release never deletes them.
    """
    out = Path(directory)
    tmp, old = out.with_name(out.name + ".tmp"), out.with_name(out.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    write(tmp)
    if out.is_dir():
        for item in out.iterdir():
            if item.name not in own_files:
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out
