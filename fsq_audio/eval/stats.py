"""Aggregation of per-utterance results: means with 95% confidence intervals and bitrates."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fsq_audio.eval.metrics import QUALITY_METRICS


def mean_ci(values: list[float | None], level: float = 0.95) -> dict:
    """Mean of the finite values with a Student-t confidence interval.

    Args:
        values: per-utterance values; None, NaN and inf are left out (and counted).
        level: two-sided confidence level.

    Returns:
        {"mean", "ci" (half-width; NaN when fewer than 2 values), "n", "n_missing"}.
    """
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    out = {"mean": math.nan, "ci": math.nan, "n": int(x.size), "n_missing": len(values) - int(x.size)}
    if x.size:
        out["mean"] = float(x.mean())
    if x.size >= 2:
        from scipy.stats import t

        sem = float(x.std(ddof=1)) / math.sqrt(x.size)
        out["ci"] = float(t.ppf(0.5 + level / 2, x.size - 1)) * sem
    return out


def aggregate(per_utt: list[dict[str, Any]]) -> dict:
    """Summary of one system over all its utterance records.

    Args:
        per_utt: records as the runner stores them (keys: duration, error, bits, payload_bits,
            encode_s, decode_s, delay_ms and the quality metrics).

    Returns:
        Metric means with CIs, total-based bitrates (sum of bits / sum of seconds) and
        real-time factors (sum of seconds spent / sum of audio seconds), and failure counts.
    """
    ok = [r for r in per_utt if not r.get("error")]
    out: dict[str, Any] = {"n": len(per_utt), "n_ok": len(ok), "n_failed": len(per_utt) - len(ok)}
    for name in (*QUALITY_METRICS, "delay_ms"):
        out[name] = mean_ci([r.get(name) for r in ok])
    seconds = sum(r["duration"] for r in ok)
    out["seconds"] = seconds
    out["kbps"] = _rate([r["bits"] for r in ok], seconds)
    payload = [r.get("payload_bits") for r in ok]
    out["kbps_payload"] = _rate(payload, seconds) if ok and all(p is not None for p in payload) else None
    out["rtf_encode"] = _ratio([r["encode_s"] for r in ok], seconds)
    out["rtf_decode"] = _ratio([r["decode_s"] for r in ok], seconds)
    out["metric_failures"] = _count_metric_errors(ok)
    return out


def _rate(bits: list[int], seconds: float) -> float:
    return sum(bits) / seconds / 1000.0 if seconds > 0 else math.nan


def _ratio(spent: list[float], seconds: float) -> float:
    return sum(spent) / seconds if seconds > 0 else math.nan


def _count_metric_errors(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        for name in r.get("metric_errors") or {}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def json_safe(obj: Any) -> Any:
    """Copy of `obj` with NaN/inf floats as None and numpy scalars/arrays as Python values."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
