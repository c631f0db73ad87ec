"""fsq_audio.data.download without a server: md5 files, md5sum, safe extraction.

HTTP behaviour (Range resume, dropped connections, corrupt downloads, no network) is tested
against a local server in tests/egs/test_download_http.py.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from fsq_audio.data import download as dl


def test_md5sum_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert dl.md5sum(tmp_path / "f", chunk=1000) == hashlib.md5(data).hexdigest()


def test_read_md5_file_accepts_md5sum_output(tmp_path):
    f = tmp_path / "md5sum.txt"
    f.write_text(
        "# published checksums\n"
        "42E2234BA48799C1F50F24A7926300A1  dev-clean.tar.gz\n"
        "c8d0bcc9cca99d4f8b62fcc847357931 *some/dir/dev-other.tar.gz\n\n"
    )
    table = dl.read_md5_file(f)
    assert table["dev-clean"] == table["dev-clean.tar.gz"] == "42e2234ba48799c1f50f24a7926300a1"
    assert table["dev-other"] == "c8d0bcc9cca99d4f8b62fcc847357931"


@pytest.mark.parametrize("line", ["nothex  dev-clean.tar.gz", "42e2234ba48799c1f50f24a7926300a1", "a b c"])
def test_read_md5_file_rejects_malformed_lines(tmp_path, line):
    (tmp_path / "m").write_text(line + "\n")
    with pytest.raises(dl.DownloadError, match=r"m:1: expected"):
        dl.read_md5_file(tmp_path / "m")


def _tar_with(path: Path, name: str, data: bytes = b"x", link: str | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(params=["data_filter", "fallback"])
def tar_checks(request, monkeypatch):
    """Run a test with tarfile's 'data' filter and with the check used on Pythons without it."""
    if request.param == "fallback":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)


def test_extract_tar_extracts(tmp_path, tar_checks):
    _tar_with(tmp_path / "a.tar.gz", "top/file.txt", b"hello")
    dl.extract_tar(tmp_path / "a.tar.gz", tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "top" / "file.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(("name", "link"), [("../escape.txt", None), ("ln", "/etc/passwd"), ("ln", "../../x")])
def test_extract_tar_refuses_escaping_members(tmp_path, name, link, tar_checks):
    _tar_with(tmp_path / "a.tar.gz", name, link=link)
    with pytest.raises(dl.DownloadError, match="extract"):
        dl.extract_tar(tmp_path / "a.tar.gz", tmp_path / "out", progress=False)
    assert not (tmp_path / "escape.txt").exists()


def test_extract_tar_reports_a_truncated_archive(tmp_path):
    _tar_with(tmp_path / "a.tar.gz", "f.bin", bytes(100_000))
    data = (tmp_path / "a.tar.gz").read_bytes()
    (tmp_path / "a.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(dl.DownloadError, match="cannot extract"):
        dl.extract_tar(tmp_path / "a.tar.gz", tmp_path / "out", progress=False)
