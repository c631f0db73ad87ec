"""LibriSpeech (OpenSLR 12): download, verify, extract, and manifests with speaker and text.

Layout: ``LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` plus one
``<speaker>-<chapter>.trans.txt`` per chapter (``<utt id> <TEXT>`` per line).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from fsq_audio.data import download as dl
from fsq_audio.data import manifest
from fsq_audio.errors import FsqAudioError

PARTS = (
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)
DEFAULT_MIRROR = "https://www.openslr.org/resources/12"

#: md5 of the archives as published in https://www.openslr.org/resources/12/md5sum.txt
#: (the same table is in PaddleSpeech dataset/librispeech/librispeech.py and other recipes).
MD5 = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}
EXTRACTED_MARKER = ".extracted"
logger = logging.getLogger(__name__)


def check_parts(parts: list[str]) -> list[str]:
    """Return `parts`, or raise FsqAudioError naming the unknown ones."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise FsqAudioError(f"unknown LibriSpeech part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return parts


def _extract_part(archive: Path, dl_dir: Path, part: str, progress: bool) -> Path:
    """Extract into a scratch folder, then move ``LibriSpeech/<part>`` into place (atomic per part)."""
    scratch = dl_dir / f".extract-{part}"
    logger.info("extracting %s", archive)
    dl.remove_tree(scratch)
    dl.extract_tar(archive, scratch, progress=progress)
    src = scratch / "LibriSpeech" / part
    if not src.is_dir():
        dl.remove_tree(scratch)
        raise dl.DownloadError(f"{archive}: holds no LibriSpeech/{part}/ folder")
    target = dl_dir / "LibriSpeech" / part
    dl.remove_tree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, target)
    for extra in (scratch / "LibriSpeech").iterdir():  # README.TXT, SPEAKERS.TXT, LICENSE.TXT, ...
        if extra.is_file() and not (target.parent / extra.name).exists():
            os.replace(extra, target.parent / extra.name)
    dl.remove_tree(scratch)
    (target / EXTRACTED_MARKER).touch()
    return target


def download_part(
    part: str,
    dl_dir: str | os.PathLike,
    mirror: str = DEFAULT_MIRROR,
    md5: dict[str, str] | None = None,
    keep_archive: bool = True,
    progress: bool = True,
    **download_kwargs,
) -> Path:
    """Download, verify and extract one part into ``dl_dir/LibriSpeech/<part>``; skip what is done.

    Args:
        part: one of PARTS.
        dl_dir: holds ``<part>.tar.gz`` and the extracted ``LibriSpeech/`` folder.
        mirror: base URL; the archive is fetched from ``<mirror>/<part>.tar.gz``.
        md5: {part or archive name: md5}; parts not in it use the published table MD5.
        keep_archive: keep the .tar.gz after extraction (delete it to save disk).
        **download_kwargs: passed to fsq_audio.data.download.download (retries, timeout, ...).

    Returns:
        The extracted part folder.
    """
    check_parts([part])
    dl_dir = Path(dl_dir)
    target = dl_dir / "LibriSpeech" / part
    if (target / EXTRACTED_MARKER).exists():
        logger.info("%s: already extracted in %s", part, target)
        return target
    expected = (md5 or {}).get(part) or (md5 or {}).get(f"{part}.tar.gz") or MD5[part]
    url = f"{mirror.rstrip('/')}/{part}.tar.gz"
    try:
        archive = dl.download(url, dl_dir / f"{part}.tar.gz", expected, progress=progress, **download_kwargs)
    except dl.DownloadError as exc:
        raise dl.DownloadError(
            f"{exc}. Try another --mirror (e.g. https://us.openslr.org/resources/12), put {part}.tar.gz "
            f"in {dl_dir} yourself, or pass --data-dir with an already extracted LibriSpeech"
        ) from None
    _extract_part(archive, dl_dir, part, progress)
    if not keep_archive:
        archive.unlink()
    return target


def find_part(root: str | os.PathLike, part: str) -> Path:
    """The folder of `part` below `root` (which may be the part itself, LibriSpeech/ or its parent)."""
    root = Path(root)
    for cand in (root / part, root / "LibriSpeech" / part, root):
        if cand.is_dir() and cand.name == part:
            return cand
    raise FsqAudioError(
        f"{root}: no LibriSpeech part {part!r} (looked for {root / part} and {root / 'LibriSpeech' / part})"
    )


def read_transcripts(part_dir: str | os.PathLike) -> dict[str, str]:
    """{utterance id: text} from every ``*.trans.txt`` below `part_dir`."""
    texts: dict[str, str] = {}
    for trans in sorted(Path(part_dir).glob("*/*/*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt, _, text = line.strip().partition(" ")
            if utt:
                texts[utt] = text.strip()
    return texts


def prepare_part(
    part_dir: str | os.PathLike, jobs: int = 1, progress: bool = True
) -> tuple[list[dict], list[tuple[str, str]]]:
    """Manifest rows (id, path, duration, sample_rate, channels, speaker, text) of one part.

    Args:
        part_dir: e.g. ``LibriSpeech/dev-clean`` (speaker/chapter folders of .flac files).
        jobs: threads reading audio headers.

    Returns:
        (rows, bad): rows sorted by id; (path, reason) for unreadable files. Files without a
        transcript line keep a row without ``text``.
    """
    part_dir = Path(part_dir)
    files = sorted(part_dir.glob("*/*/*.flac"))
    rows, bad = manifest.scan_files(files, None, jobs, progress, desc=part_dir.name)
    texts = read_transcripts(part_dir)
    for row in rows:
        row["speaker"] = row["id"].split("-")[0]
        if row["id"] in texts:
            row["text"] = texts[row["id"]]
    return sorted(rows, key=lambda r: r["id"]), bad


def prepare(
    root: str | os.PathLike,
    parts: list[str],
    out_dir: str | os.PathLike,
    jobs: int = 1,
    progress: bool = True,
) -> dict[str, Path]:
    """Write ``<out_dir>/<part>.jsonl`` for each part found below `root`.

    Unreadable files are skipped with a warning on stderr; a part with no readable file
    is an error. Returns {part: manifest path}.
    """
    out: dict[str, Path] = {}
    for part in check_parts(parts):
        rows, bad = prepare_part(find_part(root, part), jobs, progress)
        for path, reason in bad[:20]:
            print(f"warning: skipped {path}: {reason}", file=sys.stderr)
        if not rows:
            raise FsqAudioError(f"{part}: no readable .flac files below {find_part(root, part)}")
        out[part] = Path(out_dir) / f"{part}.jsonl"
        manifest.write_manifest(out[part], rows)
        skipped = f"; skipped {len(bad)} unreadable file(s)" if bad else ""
        print(f"{part}: {len(rows)} utterances, {manifest.total_hours(rows):.2f} h -> {out[part]}{skipped}",
              file=sys.stderr)
    return out
