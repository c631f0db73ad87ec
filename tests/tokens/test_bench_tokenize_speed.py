"""Smoke test of benchmarks/tokenize_speed.py: tiny model, one short clip, one thread."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tokenize_speed.py"


def test_tokenize_speed_runs(speech_clip, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tokenize_speed", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(speech_clip, data / speech_clip.name)
    out = tmp_path / "speed.json"
    assert bench.main(["--config", "tiny", "--data", str(data), "--threads", "1", "--batch-seconds", "2",
                       "--out", str(out)]) == 0
    assert "audio h / wall h" in capsys.readouterr().out
    records = json.loads(out.read_text())["records"]
    assert [r["method"] for r in records] == ["tokenize, batch 2 s", "Codec.encode per file"]
    assert all(r["hours_per_hour"] > 0 for r in records)
