"""Smoke tests of the benchmark scripts: helpers, parsing and tiny end-to-end runs (no peers needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import common, memory, peers


def test_time_call_counts_repeats_and_median():
    calls = []
    timing = common.time_call(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and len(timing.times) == 3
    assert timing.best <= timing.median


def test_noise_clip_is_seeded_and_resampled():
    a, source = common.load_clip(0.5, 16000, seed=3, data_dir=None)
    b, _ = common.load_clip(0.5, 16000, seed=3, data_dir=None)
    c, _ = common.load_clip(0.5, 24000, seed=3, data_dir=None)
    assert a.shape == (1, 1, 8000) and torch.equal(a, b) and "noise" in source
    assert c.shape == (1, 1, 12000) and c.dtype == torch.float32


def test_markdown_table_formats_floats():
    table = common.markdown_table(["a", "b"], [["x", 123.456], ["y", float("nan")], ["z", 0.01234]])
    lines = table.splitlines()
    assert lines[0] == "| a | b |" and lines[2] == "| x | 123.5 |"
    assert lines[3] == "| y | - |" and lines[4] == "| z | 0.0123 |"


def test_parse_time_v():
    text = ("\tUser time (seconds): 50.25\n\tSystem time (seconds): 1.50\n"
            "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50\n"
            "\tMaximum resident set size (kbytes): 204800\n")
    assert memory.parse_time_v(text) == {"peak_rss_mib": 200.0, "cpu_s": 51.75, "wall_s": 62.5}
    with pytest.raises(RuntimeError):
        memory.parse_time_v("nothing")


def test_load_source_skips_named_imports_and_defs(tmp_path: Path):
    src = tmp_path / "upstream.py"
    src.write_text("import math\nimport not_installed_module_xyz\n"
                   "class Wrapper(not_installed_module_xyz.Base):\n    pass\n"
                   "def kept():\n    return math.pi\n")
    mod = peers.load_source("bench_test_upstream", src, skip_imports={"not_installed_module_xyz"},
                            skip_defs={"Wrapper"})
    assert mod.kept() == pytest.approx(3.14159, rel=1e-5) and not hasattr(mod, "Wrapper")


def test_fsq_speed_runs_ours(tmp_path: Path, capsys):
    from benchmarks import fsq_speed

    out = tmp_path / "fsq.json"
    assert fsq_speed.main(["--levels", "8,5,5,5", "--batch", "2", "--frames", "64", "--threads", "1",
                           "--repeats", "2", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    ops = {(r["impl"], r["op"]) for r in data["results"]}
    assert (fsq_speed.OURS, "quantise+index") in ops and (fsq_speed.OURS, "train fwd+bwd") in ops
    assert "M vectors/s" in capsys.readouterr().out


def test_codec_speed_runs_tiny_model(tmp_path: Path, capsys):
    pytest.importorskip("fsq_audio.models.codec")
    from benchmarks import codec_speed

    out = tmp_path / "codec.json"
    assert codec_speed.main(["--models", "ours", "--config", "tiny", "--durations", "0.5", "--threads", "1",
                             "--repeats", "1", "--out", str(out)]) == 0
    records = json.loads(out.read_text())["results"]
    assert {r["op"] for r in records} == {"encode", "decode"}
    assert all(r["x_realtime"] > 0 for r in records)
    assert "encode x-RT" in capsys.readouterr().out
