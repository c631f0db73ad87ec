"""fsq_audio.data.download against a local HTTP mirror: resume, corrupt files, no network."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fsq_audio.data import download as dl
from fsq_audio.data import librispeech

NAME = "dev-clean.tar.gz"


def fetch(mirror, corpus, dest: Path, md5: str | None = None, **kw) -> Path:
    kw = {"retries": 3, "timeout": 5.0, "backoff": 0.0, "progress": False} | kw
    return dl.download(f"{mirror.url}/{NAME}", dest, md5 or corpus.md5, **kw)


def test_download_verifies_and_renames(mirror, corpus, tmp_path):
    out = fetch(mirror, corpus, tmp_path / NAME)
    assert out.read_bytes() == (corpus.mirror_dir / NAME).read_bytes()
    assert not (tmp_path / f"{NAME}.part").exists()
    assert mirror.requests == [(NAME, None)]


def test_existing_good_file_is_not_downloaded_again(mirror, corpus, tmp_path):
    fetch(mirror, corpus, tmp_path / NAME)
    fetch(mirror, corpus, tmp_path / NAME)
    assert len(mirror.requests) == 1


def test_dropped_connection_resumes_with_range(mirror, corpus, tmp_path):
    mirror.drop_once.add(NAME)
    out = fetch(mirror, corpus, tmp_path / NAME)
    assert hashlib.md5(out.read_bytes()).hexdigest() == corpus.md5
    size = (corpus.mirror_dir / NAME).stat().st_size
    assert len(mirror.requests) == 2
    assert mirror.requests[0] == (NAME, None)
    assert mirror.requests[1] == (NAME, f"bytes={size // 2}-")


def test_server_gone_after_a_drop_is_retried(mirror, corpus, tmp_path, monkeypatch):
    real_open, calls = dl._open, []

    def flaky_open(url, offset, timeout):
        calls.append(offset)
        if len(calls) == 2:  # the reconnect after the drop fails once
            raise dl._Unreachable(f"cannot download {url}: refused")
        return real_open(url, offset, timeout)

    monkeypatch.setattr(dl, "_open", flaky_open)
    mirror.drop_once.add(NAME)
    out = fetch(mirror, corpus, tmp_path / NAME)
    assert hashlib.md5(out.read_bytes()).hexdigest() == corpus.md5
    size = (corpus.mirror_dir / NAME).stat().st_size
    assert calls == [0, size // 2, size // 2]


def test_part_file_from_an_earlier_run_is_resumed(mirror, corpus, tmp_path):
    data = (corpus.mirror_dir / NAME).read_bytes()
    (tmp_path / f"{NAME}.part").write_bytes(data[:1000])
    out = fetch(mirror, corpus, tmp_path / NAME)
    assert out.read_bytes() == data
    assert mirror.requests == [(NAME, "bytes=1000-")]


def test_complete_part_file_gets_416_and_is_used(mirror, corpus, tmp_path):
    data = (corpus.mirror_dir / NAME).read_bytes()
    (tmp_path / f"{NAME}.part").write_bytes(data)
    assert fetch(mirror, corpus, tmp_path / NAME).read_bytes() == data


def test_server_without_range_support_restarts_from_zero(mirror, corpus, tmp_path):
    mirror.ranges = False
    data = (corpus.mirror_dir / NAME).read_bytes()
    (tmp_path / f"{NAME}.part").write_bytes(b"x" * 500)
    assert fetch(mirror, corpus, tmp_path / NAME).read_bytes() == data


def test_md5_mismatch_is_an_error_and_the_file_is_removed(mirror, corpus, tmp_path):
    with pytest.raises(dl.DownloadError, match="md5 mismatch.*deleted"):
        fetch(mirror, corpus, tmp_path / "dl" / NAME, md5="0" * 32)
    assert list((tmp_path / "dl").iterdir()) == []


def test_corrupt_existing_file_is_replaced(mirror, corpus, tmp_path):
    (tmp_path / NAME).write_bytes(b"garbage")
    out = fetch(mirror, corpus, tmp_path / NAME)
    assert hashlib.md5(out.read_bytes()).hexdigest() == corpus.md5


def test_giving_up_keeps_the_part_file_for_later(mirror, corpus, tmp_path):
    mirror.drop_once.add(NAME)
    with pytest.raises(dl.DownloadError, match="run again to resume"):
        fetch(mirror, corpus, tmp_path / NAME, retries=0)
    assert (tmp_path / f"{NAME}.part").stat().st_size > 0
    assert not (tmp_path / NAME).exists()


def test_no_network_gives_a_clear_message(dead_url, corpus, tmp_path):
    with pytest.raises(dl.DownloadError, match="cannot download .*no network"):
        dl.download(f"{dead_url}/{NAME}", tmp_path / NAME, corpus.md5, progress=False)


def test_http_404_is_named(mirror, tmp_path):
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        dl.download(f"{mirror.url}/missing.tar.gz", tmp_path / "m.tar.gz", progress=False)


def test_download_part_extracts_and_then_skips(mirror, corpus, tmp_path):
    md5 = dl.read_md5_file(corpus.md5_file)
    part = librispeech.download_part("dev-clean", tmp_path, mirror.url, md5, progress=False, backoff=0.0)
    assert part == tmp_path / "LibriSpeech" / "dev-clean"
    assert (part / librispeech.EXTRACTED_MARKER).exists()
    assert sorted(p.stem for p in part.glob("*/*/*.flac")) == sorted(corpus.texts)
    assert (tmp_path / "LibriSpeech" / "README.TXT").exists()
    assert not list(tmp_path.glob(".extract-*"))
    librispeech.download_part("dev-clean", tmp_path, mirror.url, md5, progress=False)
    assert len(mirror.requests) == 1


def test_download_part_hints_at_mirror_and_data_dir(dead_url, tmp_path):
    with pytest.raises(dl.DownloadError, match="--mirror.*--data-dir"):
        librispeech.download_part("dev-clean", tmp_path, dead_url, progress=False)
