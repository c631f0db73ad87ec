"""Resumable HTTP downloads with md5 checks, and safe tar extraction (urllib only).

A download goes to ``<dest>.part``; an interrupted transfer is resumed with an HTTP Range
request (on the next attempt, or the next run), and the file is renamed onto ``dest`` only
after its md5 matches. A complete file with the wrong md5 is deleted, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from fsq_audio.errors import FsqAudioError

CHUNK = 1 << 20
USER_AGENT = "fsq-audio-downloader/1"
logger = logging.getLogger(__name__)


class DownloadError(FsqAudioError):
    """A file cannot be downloaded, fails its checksum, or cannot be extracted."""


class _Interrupted(Exception):
    """The connection dropped mid-transfer; the .part file can be resumed."""


class _Unreachable(DownloadError):
    """The server cannot be reached (no route, refused, DNS, timeout)."""


def md5sum(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_md5_file(path: str | os.PathLike) -> dict[str, str]:
    """Parse an ``md5sum``-style file (``<md5>  <name>`` per line) into {name: md5}.

    Names are stored as written and also without ``.tar.gz``, so both
    ``dev-clean.tar.gz`` and ``dev-clean`` find the entry.
    """
    table: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{32}", parts[0]):
            raise DownloadError(f"{path}:{n}: expected '<md5> <file name>', got {line.strip()!r}")
        digest, name = parts[0].lower(), Path(parts[1].lstrip("*")).name
        table[name] = digest
        table[name.removesuffix(".tar.gz")] = digest
    return table


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse | None:
    """Open `url` from byte `offset`; None when the server says the range is past the end."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Unreachable(
            f"cannot download {url}: {reason} (no network connection, or a wrong mirror URL?)"
        ) from None


def _expected_total(resp: http.client.HTTPResponse, offset: int) -> int | None:
    """Full file size from Content-Range (206) or Content-Length (200), if the server gives it."""
    content_range = resp.headers.get("Content-Range", "")
    m = re.match(r"bytes\s+(\d+)-\d+/(\d+)", content_range)
    if m:
        return int(m.group(2))
    length = resp.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (Range resume); raise _Interrupted on a drop."""
    offset = part.stat().st_size if part.exists() else 0
    resp = _open(url, offset, timeout)
    if resp is None:  # 416: the .part already holds the whole file
        return
    with resp:
        if offset and resp.status != 206:  # server ignored the Range header: start over
            logger.info("%s: the server ignores Range requests, downloading from the start", url)
            offset = 0
        total = _expected_total(resp, offset)
        logger.info("downloading %s (%s bytes%s)", url, total if total is not None else "unknown",
                    f", resuming at {offset}" if offset else "")
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=Path(url).name, disable=not progress or None, leave=False)
        with bar, open(part, "ab" if offset else "wb") as f:
            done = offset
            try:
                while block := resp.read(CHUNK):
                    f.write(block)
                    done += len(block)
                    bar.update(len(block))
            except (http.client.HTTPException, OSError) as exc:  # reset, timeout, IncompleteRead
                raise _Interrupted(f"cannot download {url}: connection lost after {done} bytes ({exc})") from None
    if total is not None and done < total:
        raise _Interrupted(f"cannot download {url}: connection closed after {done} of {total} bytes")


def _verify(path: Path, expected_md5: str | None) -> None:
    """Check `path` against `expected_md5`; delete it and raise DownloadError on a mismatch."""
    if expected_md5 is None:
        return
    got = md5sum(path)
    if got != expected_md5.lower():
        path.unlink()
        raise DownloadError(
            f"md5 mismatch for {path.name}: expected {expected_md5}, got {got}; "
            "the corrupt file was deleted, run again to download it afresh"
        )


def download(
    url: str,
    dest: str | os.PathLike,
    expected_md5: str | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest`, resuming partial downloads and verifying the md5.

    Skips the transfer when `dest` already exists with the right md5. A dropped
    connection (or a server that stops answering after the first contact) is resumed from
    ``<dest>.part`` up to `retries` times, waiting `backoff` * attempt seconds; a ``.part``
    left by an earlier run is resumed too. A server unreachable at the first try fails at once.

    Returns:
        `dest` as a Path.

    Raises:
        DownloadError: the server cannot be reached, answers with an HTTP error, keeps
            dropping the connection, or the md5 does not match (the file is then deleted).
    """
    dest = Path(dest)
    if dest.exists():
        try:
            _verify(dest, expected_md5)
            return dest
        except DownloadError:
            pass  # a stale or corrupt file: it was deleted, fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress)
            break
        except (_Interrupted, _Unreachable) as exc:
            if isinstance(exc, _Unreachable) and attempt == 0:
                raise  # never reached the server: no point in retrying
            if attempt == retries:
                raise DownloadError(
                    f"{exc}; gave up after {retries} retries (the partial file {part} is kept, "
                    "run again to resume)"
                ) from None
            logger.warning("%s; resuming (retry %d/%d)", exc, attempt + 1, retries)
            time.sleep(backoff * (attempt + 1))
    _verify(part, expected_md5)
    os.replace(part, dest)
    logger.info("%s: complete%s", dest, ", md5 verified" if expected_md5 else "")
    return dest


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Refuse absolute paths, '..' and links that would land outside `dest` (old Pythons)."""
    target = (dest / member.name).resolve()
    if member.name.startswith("/") or not target.is_relative_to(dest.resolve()):
        raise DownloadError(f"refusing to extract {member.name!r}: outside the target folder")
    if member.issym() or member.islnk() or member.isdev():
        raise DownloadError(f"refusing to extract {member.name!r}: links and devices are not allowed")


def extract_tar(archive: str | os.PathLike, dest: str | os.PathLike, progress: bool = True) -> None:
    """Extract a (gzipped) tar archive into `dest`, refusing members that escape it.

    Raises:
        DownloadError: the archive is unreadable or holds unsafe members.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in tqdm(members, desc=f"extract {archive.name}", unit="file",
                               disable=not progress or None, leave=False):
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, dest, filter="data")
                else:  # Python < 3.10.12 / 3.11.4
                    _check_member(member, dest)
                    tar.extract(member, dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"cannot extract {archive}: {exc}") from None


def remove_tree(path: str | os.PathLike) -> None:
    """Delete a folder tree if it exists (used to clear half-done extractions)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)

