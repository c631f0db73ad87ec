"""Smoke test of benchmarks/lm_entropy.py (fixed vs LM bits per second) with tiny models."""

from __future__ import annotations

import json

from lm_helpers import REPO


def test_lm_entropy_benchmark(tmp_path, monkeypatch, codec_dir, tiny_lm_dir, speech_clip, capsys):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import lm_entropy

    out = tmp_path / "r.json"
    assert lm_entropy.main(["--model", str(codec_dir), "--lm", str(tiny_lm_dir), "--data", str(speech_clip.parent),
                            "--limit", "1", "--stages", "1", "3", "--verify", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| stages | LM-coded stages | fixed bits/s | LM bits/s |" in table
    rows = json.loads(out.read_text())["rows"]
    assert [r["stages"] for r in rows] == [1, 3] and all(r["exact"] for r in rows)
    # the uniform stages cost log2(1000) bits per code, the LM stages about their ideal code length
    assert rows[1]["lm_bits"] < rows[1]["fixed_bits"] + 64
    assert abs(rows[0]["lm_bits"] - rows[0]["ideal_bits"]) < 64
