"""fsq_audio.data.librispeech: layout parsing, manifests, checksums and offline download skips."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fsq_audio.data import librispeech, prepare
from fsq_audio.errors import FsqAudioError

UTTS = {"19-198-0000": "NORTHANGER ABBEY", "19-198-0001": "THIS LITTLE WORK", "26-495-0000": "CHAPTER ONE"}
OTHER_UTTS = {"3000-15664-0000": "A LONG WAY", "3000-15664-0001": "FROM HOME", "3001-15665-0000": "SO IT GOES"}


def make_part(root: Path, part: str = "dev-clean", transcribe: bool = True, utts: dict = UTTS) -> Path:
    """root/LibriSpeech/<part> with `utts` as short flac files and per-chapter trans.txt."""
    part_dir = root / "LibriSpeech" / part
    for utt, text in utts.items():
        spk, ch, _ = utt.split("-")
        chapter = part_dir / spk / ch
        chapter.mkdir(parents=True, exist_ok=True)
        sf.write(chapter / f"{utt}.flac", 0.05 * np.ones(1600 + 160 * len(text)), 16000)
        if transcribe:
            with open(chapter / f"{spk}-{ch}.trans.txt", "a") as f:
                f.write(f"{utt} {text}\n")
    return part_dir


def test_published_md5_table_covers_the_seven_parts():
    assert set(librispeech.MD5) == set(librispeech.PARTS) and len(librispeech.PARTS) == 7
    assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in librispeech.MD5.values())


def test_prepare_part_rows_have_speaker_and_text(tmp_path):
    rows, bad = librispeech.prepare_part(make_part(tmp_path), jobs=2, progress=False)
    assert bad == []
    assert [r["id"] for r in rows] == sorted(UTTS)
    for r in rows:
        assert r["text"] == UTTS[r["id"]]
        assert r["speaker"] == r["id"].split("-")[0]
        assert r["sample_rate"] == 16000 and r["duration"] > 0.1


def test_missing_transcripts_and_unreadable_files(tmp_path):
    part = make_part(tmp_path, transcribe=False)
    (part / "19" / "198" / "19-198-0009.flac").write_bytes(b"not flac")
    rows, bad = librispeech.prepare_part(part, progress=False)
    assert len(rows) == 3 and not any("text" in r for r in rows)
    assert len(bad) == 1 and bad[0][0].endswith("19-198-0009.flac")


@pytest.mark.parametrize("level", ["parent", "LibriSpeech", "part"])
def test_find_part_accepts_three_roots(tmp_path, level):
    part = make_part(tmp_path)
    root = {"parent": tmp_path, "LibriSpeech": tmp_path / "LibriSpeech", "part": part}[level]
    assert librispeech.find_part(root, "dev-clean") == part


def test_find_part_and_check_parts_errors(tmp_path):
    with pytest.raises(FsqAudioError, match="no LibriSpeech part 'test-other'"):
        librispeech.find_part(tmp_path, "test-other")
    with pytest.raises(FsqAudioError, match="unknown LibriSpeech part.*train-clean-5"):
        librispeech.check_parts(["dev-clean", "train-clean-5"])


def test_prepare_writes_one_manifest_per_part(tmp_path, capsys):
    make_part(tmp_path, "dev-clean")
    make_part(tmp_path, "test-clean")
    out = librispeech.prepare(tmp_path, ["dev-clean", "test-clean"], tmp_path / "m", progress=False)
    assert sorted(out) == ["dev-clean", "test-clean"]
    assert len(out["test-clean"].read_text().splitlines()) == 3
    assert "dev-clean: 3 utterances" in capsys.readouterr().err


def test_prepare_cli_librispeech_option(tmp_path):
    make_part(tmp_path, "dev-clean")
    make_part(tmp_path, "dev-other", utts=OTHER_UTTS)
    parser = argparse.ArgumentParser()
    prepare.add_arguments(parser)
    out = tmp_path / "m.jsonl"
    args = parser.parse_args(["--librispeech", str(tmp_path), "-o", str(out), "--no-progress"])
    assert prepare.run(args) == 0
    assert len(out.read_text().splitlines()) == 6  # both parts found
    args = parser.parse_args(["--librispeech", str(tmp_path), "--parts", "dev-other", "-o", str(out), "--force"])
    assert prepare.run(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {Path(r["path"]).parts[-4] for r in rows} == {"dev-other"}
    with pytest.raises(FsqAudioError, match="holds none of the LibriSpeech parts"):
        prepare.run(parser.parse_args(["--librispeech", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "x")]))


def test_download_part_uses_a_local_archive_without_network(tmp_path):
    src = tmp_path / "src"
    make_part(src)
    dl_dir = tmp_path / "dl"
    dl_dir.mkdir()
    archive = dl_dir / "dev-clean.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "LibriSpeech", arcname="LibriSpeech")
    md5 = {"dev-clean.tar.gz": hashlib.md5(archive.read_bytes()).hexdigest()}
    mirror = "http://127.0.0.1:9/unused"  # never contacted: the archive is there and verified
    part = librispeech.download_part("dev-clean", dl_dir, mirror, md5, keep_archive=False, progress=False)
    assert sorted(p.stem for p in part.glob("*/*/*.flac")) == sorted(UTTS)
    assert not archive.exists()
    assert librispeech.download_part("dev-clean", dl_dir, mirror, md5, progress=False) == part


def test_archive_without_the_part_is_rejected(tmp_path):
    src = tmp_path / "src"
    make_part(src, "dev-other")
    dl_dir = tmp_path / "dl"
    dl_dir.mkdir()
    with tarfile.open(dl_dir / "dev-clean.tar.gz", "w:gz") as tar:
        tar.add(src / "LibriSpeech", arcname="LibriSpeech")
    md5 = {"dev-clean": hashlib.md5((dl_dir / "dev-clean.tar.gz").read_bytes()).hexdigest()}
    with pytest.raises(FsqAudioError, match="holds no LibriSpeech/dev-clean"):
        librispeech.download_part("dev-clean", dl_dir, "http://127.0.0.1:9", md5, progress=False)
    assert not list(dl_dir.glob(".extract-*"))
