"""Metric functions, alignment and aggregation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fsq_audio.eval import metrics
from fsq_audio.eval.stats import aggregate, json_safe, mean_ci

SR = metrics.EVAL_SR


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def test_si_sdr_of_scaled_copy_is_very_large():
    x = _noise(SR)
    assert metrics.si_sdr(x, 0.25 * x) > 100.0
    assert metrics.si_sdr(x, -3.0 * x) > 100.0  # the gain may be negative


def test_si_sdr_of_orthogonal_noise_at_known_level():
    x = _noise(SR, 1)
    x -= x.mean()
    n = _noise(SR, 2)
    n -= n.mean()
    n -= (n @ x) / (x @ x) * x  # exactly orthogonal to the reference
    n *= math.sqrt((x @ x) / (n @ n) / 10.0)  # 10 dB below it
    assert metrics.si_sdr(x, 2.0 * x + 2.0 * n) == pytest.approx(10.0, abs=1e-6)


def test_si_sdr_rejects_bad_input():
    with pytest.raises(ValueError):
        metrics.si_sdr(np.ones(10), np.ones(11))
    with pytest.raises(ValueError, match="silent"):
        metrics.si_sdr(np.zeros(100), _noise(100))


def test_mel_l1_identical_is_zero_and_silence_is_large():
    x = 0.1 * _noise(SR).astype(np.float32)
    assert metrics.mel_l1(x, x.copy()) == 0.0
    assert metrics.mel_l1(x, np.zeros_like(x)) > 3.0


def test_stft_matches_librosa_reflect_centred():
    librosa = pytest.importorskip("librosa")
    x = _noise(5000, 3)
    ref = np.abs(librosa.stft(x, n_fft=1024, hop_length=256, window="hann", center=True, pad_mode="reflect"))
    got = metrics.stft_magnitude(x)
    assert got.shape == ref.shape == (513, 1 + 5000 // 256)
    np.testing.assert_allclose(got, ref, atol=1e-9)
    assert metrics.mel_filterbank().shape == (80, 513)


@pytest.mark.parametrize("delay", [0, 37, -120, 799])
def test_align_recovers_a_constant_delay(delay):
    x = _noise(8000, 4).astype(np.float32)
    deg = np.concatenate([np.zeros(delay, np.float32), x]) if delay >= 0 else x[-delay:]
    assert metrics.find_delay(x, deg, 800) == delay
    aligned, d = metrics.align(x, deg)
    assert d == delay and aligned.shape == x.shape
    if delay >= 0:
        np.testing.assert_array_equal(aligned, x)


def test_score_of_silence_records_nan_and_reason():
    out = metrics.score(np.zeros(SR // 2, np.float32), np.zeros(SR // 2, np.float32))
    assert math.isnan(out["pesq_wb"]) and "pesq_wb" in out["metric_errors"]
    assert math.isnan(out["si_sdr"]) and "silent" in out["metric_errors"]["si_sdr"]
    assert out["mel_l1"] == 0.0


def test_identity_scores_on_real_speech(speech):
    out = metrics.score(speech, speech.copy())
    assert out["pesq_wb"] > 4.5 and out["pesq_nb"] > 4.4
    assert out["stoi"] > 0.99 and out["estoi"] > 0.99
    assert out["mel_l1"] == 0.0 and out["delay_ms"] == 0.0 and out["si_sdr"] > 100
    assert out["metric_errors"] == {}


def test_degraded_speech_scores_lower(speech):
    noisy = speech + 0.05 * _noise(len(speech), 5).astype(np.float32)
    out = metrics.score(speech, noisy)
    assert 1.0 < out["pesq_wb"] < 3.0 and out["stoi"] < 0.99
    assert 0.0 < out["mel_l1"] and -10.0 < out["si_sdr"] < 20.0


def test_mean_ci_skips_missing_values():
    out = mean_ci([1.0, 2.0, 3.0, math.nan, None])
    assert out["mean"] == 2.0 and out["n"] == 3 and out["n_missing"] == 2
    assert out["ci"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert math.isnan(mean_ci([5.0])["ci"]) and math.isnan(mean_ci([])["mean"])


def test_aggregate_uses_totals_for_rates():
    recs = [
        {"duration": 1.0, "error": None, "bits": 6000, "payload_bits": 5000, "encode_s": 0.1, "decode_s": 0.2,
         "pesq_wb": 3.0, "metric_errors": {}},
        {"duration": 3.0, "error": None, "bits": 6000, "payload_bits": 3000, "encode_s": 0.3, "decode_s": 0.2,
         "pesq_wb": math.nan, "metric_errors": {"pesq_wb": "NoUtterancesError"}},
        {"duration": 2.0, "error": "RuntimeError: boom"},
    ]
    agg = aggregate(recs)
    assert (agg["n"], agg["n_ok"], agg["n_failed"]) == (3, 2, 1)
    assert agg["kbps"] == pytest.approx(3.0) and agg["kbps_payload"] == pytest.approx(2.0)
    assert agg["rtf_encode"] == pytest.approx(0.1) and agg["pesq_wb"]["n"] == 1
    assert agg["metric_failures"] == {"pesq_wb": 1}
    text = json.dumps(json_safe(agg), allow_nan=False)
    assert "NaN" not in text
