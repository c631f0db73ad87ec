"""`fsq-audio prepare` (fsq_audio.data.prepare): folders with unreadable files, exit codes, options."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fsq_audio.data import prepare
from fsq_audio.errors import FsqAudioError


def tone(path: Path, seconds: float = 0.25, sr: int = 16000) -> None:
    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(2 * np.pi * 220 * t), sr)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    prepare.add_arguments(parser)
    return parser.parse_args([*argv, "--no-progress", "--jobs", "2"])


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """2 readable files (wav + flac in a subfolder), 1 garbage .wav, 1 empty .flac, 1 non-audio file."""
    root = tmp_path / "audio"
    tone(root / "a.wav")
    tone(root / "sub" / "b.flac", seconds=0.5, sr=8000)
    (root / "broken.wav").write_bytes(b"RIFF not really a wav")
    (root / "sub" / "empty.flac").write_bytes(b"")
    (root / "notes.txt").write_text("ignored: not an audio extension")
    return root


def test_readable_files_are_kept_and_the_rest_reported(mixed, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    assert prepare.run(parse(str(mixed), "-o", str(out))) == 0
    rows = rows_of(out)
    assert [r["id"] for r in rows] == ["a", "sub_b"]
    assert rows[1]["sample_rate"] == 8000 and rows[1]["duration"] == pytest.approx(0.5)
    assert all(Path(r["path"]).is_absolute() for r in rows)
    err = capsys.readouterr().err
    assert err.count("warning: skipped") == 2
    assert "broken.wav" in err and "empty.flac" in err
    assert "wrote 2 rows" in err and "skipped 2 unreadable" in err


def test_strict_refuses_and_writes_nothing(mixed, tmp_path):
    out = tmp_path / "m.jsonl"
    with pytest.raises(FsqAudioError, match="2 unreadable file.*--strict"):
        prepare.run(parse(str(mixed), "-o", str(out), "--strict"))
    assert not out.exists()


def test_no_readable_file_is_an_error(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_bytes(b"junk")
    with pytest.raises(FsqAudioError, match=r"no usable audio found \(1 unreadable\)"):
        prepare.run(parse(str(tmp_path / "bad"), "-o", str(tmp_path / "m.jsonl")))
    with pytest.raises(FsqAudioError, match="no such file"):
        prepare.run(parse(str(tmp_path / "missing"), "-o", str(tmp_path / "m.jsonl")))


def test_existing_output_needs_force(mixed, tmp_path):
    out = tmp_path / "m.jsonl"
    out.write_text("old\n")
    with pytest.raises(FsqAudioError, match="--force"):
        prepare.run(parse(str(mixed), "-o", str(out)))
    assert prepare.run(parse(str(mixed), "-o", str(out), "--force")) == 0
    assert len(rows_of(out)) == 2


def test_single_file_and_duplicate_ids(tmp_path):
    tone(tmp_path / "one.wav")
    assert prepare.run(parse(str(tmp_path / "one.wav"), "-o", str(tmp_path / "m.jsonl"))) == 0
    assert [r["id"] for r in rows_of(tmp_path / "m.jsonl")] == ["one"]
    tone(tmp_path / "dup" / "x.wav")
    tone(tmp_path / "dup" / "x.flac")
    with pytest.raises(FsqAudioError, match="duplicate id 'x'"):
        prepare.run(parse(str(tmp_path / "dup"), "-o", str(tmp_path / "d.jsonl")))


def test_source_is_required_and_parts_need_librispeech(tmp_path):
    with pytest.raises(FsqAudioError, match="give a folder"):
        prepare.run(parse("-o", str(tmp_path / "m.jsonl")))
    with pytest.raises(FsqAudioError, match="--parts only applies"):
        prepare.run(parse(str(tmp_path), "-o", str(tmp_path / "m.jsonl"), "--parts", "dev-clean"))


def test_module_entry_point_exit_codes(mixed, tmp_path):
    cmd = [sys.executable, "-m", "fsq_audio.data.prepare", "--no-progress", "-j", "1"]
    ok = subprocess.run([*cmd, str(mixed), "-o", str(tmp_path / "m.jsonl")], capture_output=True, text=True)
    assert ok.returncode == 0 and "wrote 2 rows" in ok.stderr
    bad = subprocess.run([*cmd, str(tmp_path / "nope"), "-o", str(tmp_path / "n.jsonl")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("fsq-audio: error: ")
