"""The full evaluation: CLI options, outputs, failures, determinism, process pool."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from fsq_audio.errors import FsqAudioError
from fsq_audio.eval import runner
from fsq_audio.eval.pool import MetricPool
from fsq_audio.eval.runner import evaluate

HAVE_MODELS = importlib.util.find_spec("fsq_audio.models") is not None and \
    importlib.util.find_spec("fsq_audio.api") is not None


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    return parser.parse_args(list(argv))


def _check_outputs(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "data:image/png;base64," in html and "<audio controls" in html and "data:audio/flac;base64," in html
    assert "## Metrics" in md and "| PESQ-WB |" in md and "figures/rate_pesq_wb.png" in md
    assert (out / "figures" / "rate_pesq_wb.png").read_bytes()[:4] == b"\x89PNG"
    return results


@pytest.mark.skipif(not HAVE_MODELS, reason="fsq_audio.models / fsq_audio.api not available yet")
def test_full_eval_with_a_tiny_random_codec(tmp_path, dev_clips, capsys):
    import torch

    from fsq_audio import Codec, CodecConfig

    torch.manual_seed(0)
    Codec(CodecConfig.tiny()).save_pretrained(str(tmp_path / "model"))
    data = tmp_path / "clips"
    data.mkdir()
    for p in dev_clips:
        (data / p.name).symlink_to(p)
    out = tmp_path / "report"
    args = _args("--model", str(tmp_path / "model"), "--data", str(data), "--stages", "1,2",
                 "--baselines", "identity", "-o", str(out), "--examples", "1", "-q")
    assert runner.run(args) == 0
    results = _check_outputs(out)
    names = [s["name"] for s in results["systems"]]
    assert names == ["fsq:s1", "fsq:s2", "identity"]
    fsq1, fsq2 = results["systems"][:2]
    assert fsq1["tokens"]["frames"] > 0 and len(fsq2["tokens"]["utilisation"]) == 2
    assert 0 < fsq1["tokens"]["utilisation"][0] <= 1
    # the real file is bigger than the nominal payload rate, which the header accounts for
    agg = fsq2["aggregate"]
    assert agg["kbps"] > agg["kbps_payload"] == pytest.approx(fsq2["nominal_kbps"], rel=0.05)
    assert len(results["utterances"]) == 3 and all(not u["error"] for u in results["utterances"])
    assert "fsq" in capsys.readouterr().out
    with pytest.raises(FsqAudioError, match="--force"):
        runner.run(args)


def test_baselines_only_cli_and_failing_file(tmp_path, dev_clips, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "good", "path": str(dev_clips[1])}) + "\n"
                        + json.dumps({"id": "bad", "path": str(bad)}) + "\n")
    out = tmp_path / "report"
    assert runner.run(_args("--data", str(manifest), "-o", str(out), "-q")) == 1
    results = _check_outputs(out)
    good, broken = results["utterances"]
    assert broken["error"] and "broken.wav" in broken["error"] and not good["error"]
    agg = results["systems"][0]["aggregate"]
    assert agg["n_ok"] == 1 and agg["pesq_wb"]["mean"] > 4.6 and agg["stoi"]["mean"] > 0.99
    assert "bad" in capsys.readouterr().err


def test_system_failure_is_recorded(monkeypatch, dev_rows):
    from fsq_audio.eval.baselines import Identity

    def boom(self, src, ref, workdir):
        raise RuntimeError("codec exploded")

    monkeypatch.setattr(Identity, "code", boom)
    res = evaluate(None, dev_rows[:1], baselines="identity", progress=False)
    rec = res["utterances"][0]["systems"]["identity"]
    assert rec["error"] == "RuntimeError: codec exploded"
    assert res["systems"][0]["aggregate"]["n_failed"] == 1
    assert runner.failures(res) == [(dev_rows[0]["id"], "identity: RuntimeError: codec exploded")]


def _numbers(res: dict) -> list:
    keep = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_l1", "delay_ms", "bits")
    return [[r[k] for k in keep] for u in res["utterances"] for r in u["systems"].values()]


def test_same_inputs_same_numbers(dev_rows):
    a = evaluate(None, dev_rows[:2], baselines="identity", progress=False)
    b = evaluate(None, dev_rows[:2], baselines="identity", progress=False)
    assert _numbers(a) == _numbers(b)


@pytest.mark.slow  # each spawned worker imports torch (via fsq_audio): several seconds
def test_metric_pool_with_workers_matches_inline(speech):
    rng = np.random.default_rng(0)
    degs = [speech + 0.02 * k * rng.standard_normal(len(speech)).astype(np.float32) for k in range(3)]
    with MetricPool(1) as inline:
        for k, d in enumerate(degs):
            inline.submit(k, speech, d)
        want = inline.results()
    with MetricPool(2) as pool:
        for k, d in enumerate(degs):
            pool.submit(k, speech, d)
        got = pool.results()
    assert got.keys() == want.keys()
    for k in want:  # BLAS threading may differ between processes: equal to the last few ulps
        assert got[k].pop("metric_errors") == want[k].pop("metric_errors")
        assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-12)
