"""Objective speech-quality metrics of a decoded signal against its reference.

Signals are 1-D float32 numpy arrays of shape (T,) at :data:`EVAL_SR` (16 kHz) unless a
docstring says otherwise. Every metric is a pure function of its inputs (deterministic).
:func:`score` computes them all and turns a failing metric into NaN plus a reason, so that
one silent or very short utterance never stops an evaluation.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from scipy import signal as sps

from fsq_audio import audio

#: Sample rate all metrics are computed at (P.862.2 wideband PESQ needs 16 kHz).
EVAL_SR = 16000
#: Sample rate of narrowband PESQ (P.862 + P.862.1 mapping).
NB_SR = 8000
#: Largest delay (seconds) the alignment searches, both directions.
MAX_DELAY_S = 0.05

#: Names of the per-utterance quality metrics, in report order.
QUALITY_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_l1")

_MEL_N_FFT = 1024
_MEL_HOP = 256
_MEL_BANDS = 80
_MEL_FLOOR = 1e-5


def si_sdr(ref: np.ndarray, deg: np.ndarray, eps: float = 1e-12) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019).

    Both signals are made zero-mean and the reference is scaled by the least-squares gain
    onto the degraded signal; energies get `eps` added, so a bit-exact copy gives a large
    finite value (10 log10(E_ref / 1e-12), about 149 dB on the dev set) instead of infinity.

    Args:
        ref: reference, shape (T,).
        deg: degraded signal, shape (T,), same length.
        eps: energy floor.

    Returns:
        SI-SDR in dB.

    Raises:
        ValueError: the lengths differ or the reference is all zeros.
    """
    ref = _as64(ref)
    deg = _as64(deg)
    if ref.shape != deg.shape:
        raise ValueError(f"length mismatch {ref.shape} vs {deg.shape}")
    ref = ref - ref.mean()
    deg = deg - deg.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise ValueError("silent reference")
    target = (np.dot(deg, ref) / (ref_energy + eps)) * ref
    noise = deg - target
    return 10.0 * math.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps))


@functools.lru_cache(maxsize=4)
def mel_filterbank(sr: int = EVAL_SR) -> np.ndarray:
    """80-band Slaney-scale, Slaney-normalised mel filterbank over 0..sr/2, shape (80, 513)."""
    import librosa  # heavy import, only when needed

    fb = librosa.filters.mel(
        sr=sr, n_fft=_MEL_N_FFT, n_mels=_MEL_BANDS, fmin=0.0, fmax=sr / 2, htk=False, norm="slaney"
    )
    return fb.astype(np.float64)


def stft_magnitude(x: np.ndarray, n_fft: int = _MEL_N_FFT, hop: int = _MEL_HOP) -> np.ndarray:
    """|STFT| with a periodic Hann window, centred frames and reflect padding.

    Args:
        x: signal, shape (T,).

    Returns:
        magnitude, shape (n_fft // 2 + 1, 1 + T // hop).
    """
    x = np.asarray(x, dtype=np.float64)
    pad = n_fft // 2
    mode = "reflect" if x.shape[0] > pad else "constant"
    x = np.pad(x, pad, mode=mode)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    window = sps.get_window("hann", n_fft, fftbins=True)
    return np.abs(np.fft.rfft(frames * window, axis=-1)).T


def log_mel(x: np.ndarray, sr: int = EVAL_SR) -> np.ndarray:
    """ln(max(mel magnitude, 1e-5)), shape (80, frames)."""
    mel = mel_filterbank(sr) @ stft_magnitude(x)
    return np.log(np.maximum(mel, _MEL_FLOOR))


def mel_l1(ref: np.ndarray, deg: np.ndarray, sr: int = EVAL_SR) -> float:
    """Mean |ln max(M_ref, 1e-5) - ln max(M_deg, 1e-5)| over mel bands and frames.

    M is the 80-band Slaney mel filterbank (0..8 kHz) applied to the STFT magnitude
    (1024-point periodic Hann, hop 256, centred, reflect padding), as in BASELINES-dev.md.
    """
    if len(ref) != len(deg):
        raise ValueError(f"length mismatch {len(ref)} vs {len(deg)}")
    return float(np.mean(np.abs(log_mel(ref, sr) - log_mel(deg, sr))))


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float:
    """Wideband PESQ (ITU-T P.862.2, MOS-LQO 1.04..4.64) of 16 kHz signals."""
    from pesq import pesq

    return float(pesq(EVAL_SR, _as64(ref), _as64(deg), "wb"))


def pesq_nb(ref: np.ndarray, deg: np.ndarray) -> float:
    """Narrowband PESQ (P.862 + P.862.1) after resampling both 16 kHz signals to 8 kHz."""
    from pesq import pesq

    r = audio.resample(np.asarray(ref, dtype=np.float32)[None], EVAL_SR, NB_SR)[0]
    d = audio.resample(np.asarray(deg, dtype=np.float32)[None], EVAL_SR, NB_SR)[0]
    return float(pesq(NB_SR, _as64(r), _as64(d), "nb"))


def stoi(ref: np.ndarray, deg: np.ndarray, extended: bool = False) -> float:
    """STOI (Taal et al., 2011) or extended STOI (Jensen & Taal, 2016) via pystoi."""
    from pystoi import stoi as _stoi

    if not np.any(ref):
        raise ValueError("silent reference")
    return float(_stoi(_as64(ref), _as64(deg), EVAL_SR, extended=extended))


def _as64(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64)


def find_delay(ref: np.ndarray, deg: np.ndarray, max_lag: int) -> int:
    """Constant delay of `deg` behind `ref` (samples) maximising their cross-correlation.

    Args:
        ref: reference, shape (T,).
        deg: decoded signal, shape (T',).
        max_lag: search lags in [-max_lag, max_lag].

    Returns:
        d such that deg[n + d] best matches ref[n]; ties go to the smallest |d| (then negative).
    """
    if len(ref) == 0 or len(deg) == 0:
        return 0
    xc = sps.correlate(_as64(deg), _as64(ref), mode="full", method="fft")
    zero = len(ref) - 1  # index of lag 0 in the "full" output
    lags = np.arange(-max_lag, max_lag + 1)
    valid = (zero + lags >= 0) & (zero + lags < len(xc))
    lags = lags[valid]
    values = np.round(xc[zero + lags], 9)  # rounding makes FFT noise ties deterministic
    order = np.lexsort((lags, np.abs(lags), -values))
    return int(lags[order[0]])


def align(ref: np.ndarray, deg: np.ndarray, sr: int = EVAL_SR) -> tuple[np.ndarray, int]:
    """Shift `deg` by the delay :func:`find_delay` finds (within +-50 ms) and fit it to len(ref).

    Returns:
        (aligned, delay): aligned of shape (len(ref),), delay in samples (positive: deg lags).
    """
    d = find_delay(ref, deg, int(round(MAX_DELAY_S * sr)))
    deg = np.asarray(deg, dtype=np.float32)
    shifted = deg[d:] if d >= 0 else np.concatenate([np.zeros(-d, dtype=np.float32), deg])
    return audio.fit_length(shifted[None], len(ref))[0], d


def _reason(exc: BaseException) -> str:
    """One-line 'Type: message' of an exception (pesq's messages come as bytes)."""
    msg = exc.args[0] if len(exc.args) == 1 else str(exc)
    if isinstance(msg, bytes):
        msg = msg.decode(errors="replace")
    return f"{type(exc).__name__}: {' '.join(str(msg).split())}"[:300]


_METRIC_FUNCS = {
    "pesq_wb": pesq_wb,
    "pesq_nb": pesq_nb,
    "stoi": lambda r, d: stoi(r, d, extended=False),
    "estoi": lambda r, d: stoi(r, d, extended=True),
    "si_sdr": si_sdr,
    "mel_l1": mel_l1,
}


def score(ref: np.ndarray, deg: np.ndarray, do_align: bool = True) -> dict:
    """All quality metrics of `deg` against `ref` (16 kHz), after delay alignment.

    Args:
        ref: reference, shape (T,).
        deg: decoded signal, shape (T',), any length.
        do_align: search a constant delay within +-50 ms first (else just fit the length).

    Returns:
        dict with one float per name in QUALITY_METRICS (NaN on failure), ``delay_ms``,
        and ``metric_errors`` ({name: reason}) for the metrics that failed.
    """
    ref = np.asarray(ref, dtype=np.float32)
    if do_align:
        deg, delay = align(ref, deg)
    else:
        deg, delay = audio.fit_length(np.asarray(deg, dtype=np.float32)[None], len(ref))[0], 0
    out: dict = {"delay_ms": 1000.0 * delay / EVAL_SR}
    errors: dict[str, str] = {}
    for name in QUALITY_METRICS:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # pesq/pystoi warn on silence; we record the outcome
                out[name] = _METRIC_FUNCS[name](ref, deg)
        except Exception as exc:  # pesq raises NoUtterancesError/BufferTooShortError etc.
            out[name] = math.nan
            errors[name] = _reason(exc)
    out["metric_errors"] = errors
    return out
