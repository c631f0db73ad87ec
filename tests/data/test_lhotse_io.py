"""fsq_audio.data.lhotse_io: lhotse recordings/supervisions manifests without the lhotse package."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import pytest

from fsq_audio.data import lhotse_io, manifest, prepare
from fsq_audio.errors import ConfigError


def write_jsonl_gz(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def recording(rid: str, source: str, rate: int = 16000, seconds: float = 2.0, **extra) -> dict:
    return {
        "id": rid,
        "sources": [{"type": "file", "channels": [0], "source": source}],
        "sampling_rate": rate,
        "num_samples": int(rate * seconds),
        "duration": seconds,
        "channel_ids": [0],
        **extra,
    }


@pytest.fixture
def lhotse_dir(tmp_path: Path) -> Path:
    recs = [
        recording("1089-134686-0000", "/corpus/1089-134686-0000.flac"),
        recording("rel", "audio/rel.wav", rate=8000, seconds=1.5),
        recording("url", "https://example.org/x.flac"),
        recording("sped", "/corpus/sped.flac", transforms=[{"name": "Speed", "kwargs": {"factor": 1.1}}]),
    ]
    recs[2]["sources"][0]["type"] = "url"
    sups = [
        {"id": "s2", "recording_id": "1089-134686-0000", "start": 1.0, "duration": 1.0, "channel": 0,
         "text": "WORLD", "speaker": "1089"},
        {"id": "s1", "recording_id": "1089-134686-0000", "start": 0.0, "duration": 1.0, "channel": 0,
         "text": "HELLO", "speaker": "1089"},
        {"id": "s3", "recording_id": "rel", "start": 0.0, "duration": 1.5, "channel": 0, "speaker": "A"},
        {"id": "s4", "recording_id": "rel", "start": 0.5, "duration": 0.5, "channel": 0, "speaker": "B"},
    ]
    write_jsonl_gz(tmp_path / "libri_recordings_dev.jsonl.gz", recs)
    write_jsonl_gz(tmp_path / "libri_supervisions_dev.jsonl.gz", sups)
    return tmp_path


def test_recordings_with_sibling_supervisions(lhotse_dir):
    rows, skipped = lhotse_io.read_lhotse(lhotse_dir / "libri_recordings_dev.jsonl.gz")
    assert [r["id"] for r in rows] == ["1089-134686-0000", "rel"]
    first, rel = rows
    assert first == {"id": "1089-134686-0000", "path": "/corpus/1089-134686-0000.flac", "duration": 2.0,
                     "sample_rate": 16000, "channels": 1, "speaker": "1089", "text": "HELLO WORLD"}
    assert rel["path"] == str(lhotse_dir / "audio" / "rel.wav")  # relative: resolved by the manifest
    assert rel["sample_rate"] == 8000 and "speaker" not in rel and "text" not in rel  # speakers disagree
    assert [s[0] for s in skipped] == ["url", "sped"]
    assert "exactly one 'file' source" in skipped[0][1] and "transforms" in skipped[1][1]


def test_plain_jsonl_and_explicit_supervisions(lhotse_dir, tmp_path):
    plain = tmp_path / "recs.jsonl"
    plain.write_text(json.dumps(recording("a", "/x/a.wav")) + "\n")
    sups = write_jsonl_gz(tmp_path / "s.jsonl.gz", [{"id": "s", "recording_id": "a", "text": "HI"}])
    rows, _ = lhotse_io.read_lhotse(plain, sups)
    assert rows[0]["text"] == "HI" and "speaker" not in rows[0]


def test_not_a_recordings_manifest(tmp_path):
    bad = write_jsonl_gz(tmp_path / "x.jsonl.gz", [{"id": "a", "path": "/a.wav"}])
    with pytest.raises(ConfigError, match="not a lhotse recordings manifest"):
        lhotse_io.read_lhotse(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": \n')
    with pytest.raises(ConfigError, match="broken.jsonl:1: not valid JSON"):
        lhotse_io.read_lhotse(broken)


def test_load_rows_and_prepare_read_lhotse(lhotse_dir, tmp_path):
    rows = manifest.load_rows(lhotse_dir / "libri_recordings_dev.jsonl.gz")
    assert len(rows) == 2 and rows[0]["text"] == "HELLO WORLD"
    parser = argparse.ArgumentParser()
    prepare.add_arguments(parser)
    out = tmp_path / "out.jsonl"
    args = parser.parse_args(["--lhotse", str(lhotse_dir / "libri_recordings_dev.jsonl.gz"), "-o", str(out)])
    assert prepare.run(args) == 0
    assert [r["id"] for r in manifest.read_manifest(out)] == ["1089-134686-0000", "rel"]
