"""fsq_audio.data.manifest: parallel scans, hold-out splits, and the row format round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fsq_audio.data import manifest


def make_folder(root: Path, n: int = 6, bad: int = 2) -> Path:
    for i in range(n):
        folder = root / f"d{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"u{i}.wav", np.zeros(800 * (i + 1), dtype=np.float32), 16000)
    for i in range(bad):
        (root / f"bad{i}.flac").write_bytes(b"junk")
    return root


@pytest.mark.parametrize("jobs", [1, 3])
def test_scan_folder_in_threads_keeps_order_and_reports_bad_files(tmp_path, jobs):
    make_folder(tmp_path)
    rows, bad = manifest.scan_folder(tmp_path, jobs=jobs)
    assert [r["id"] for r in rows] == ["d0_u0", "d0_u2", "d0_u4", "d1_u1", "d1_u3", "d1_u5"]
    assert [r["duration"] for r in rows][:2] == [0.05, 0.15]
    assert sorted(Path(p).name for p, _ in bad) == ["bad0.flac", "bad1.flac"]


def test_scan_folder_of_one_file_uses_its_stem(tmp_path):
    sf.write(tmp_path / "one.wav", np.zeros(160, dtype=np.float32), 16000)
    rows, bad = manifest.scan_folder(tmp_path / "one.wav")
    assert [r["id"] for r in rows] == ["one"] and bad == []


def test_write_read_round_trip_with_relative_paths(tmp_path):
    rows = [{"id": "a", "path": "audio/a.wav", "duration": 1.0, "sample_rate": 16000, "text": "ÉTÉ"}]
    manifest.write_manifest(tmp_path / "m.jsonl", rows)
    back = manifest.read_manifest(tmp_path / "m.jsonl")
    assert back[0]["path"] == str(tmp_path / "audio" / "a.wav") and back[0]["text"] == "ÉTÉ"


def test_split_rows_is_stable_and_disjoint():
    rows = [{"id": f"u{i}", "duration": 1.0} for i in range(50)]
    train, valid = manifest.split_rows(rows, 5)
    assert len(valid) == 5 and len(train) == 45
    assert {r["id"] for r in train}.isdisjoint(r["id"] for r in valid)
    assert manifest.split_rows(list(reversed(rows)), 5)[1] == list(reversed(valid))  # same ids
    train, valid = manifest.split_rows(rows[:2], 10)
    assert len(train) == 1 and len(valid) == 1  # at least one row is left for training
    assert manifest.split_rows(rows, 0) == (rows, [])


def test_total_hours():
    assert manifest.total_hours([{"duration": 1800.0}, {"duration": 1800.0}, {}]) == pytest.approx(1.0)
