"""`fsq-audio export-onnx`: the codec's encoder and decoder as two ONNX graphs.

- `encoder.onnx`: "audio" float32 (N, 1, encode_window_samples) -> "indices" int64
  (N, S, encode_window_frames). One row per encode window, as `Codec.encode_windows` (up to a
  rare latent within float rounding of a level boundary, which may round the other way).
- `decoder.onnx`: "indices" int64 (B, S', F) -> "audio" float32 (B, 1, F * hop). Any stage
  prefix S' <= S (stages past S' contribute nothing), any B and F; as `Codec.decoder` applied
  to `quantizer.decode_indices`, i.e. one decode window without the windowing of `Codec.decode`.
- `onnx.json`: model id, rates and the window sizes that `frame_audio` / `decode_frames` need.

The graphs are traced from the inference modules themselves; only the iSTFT head is swapped
for `ExportISTFT` (no complex tensors, irfft or fold, which the ONNX exporter lacks), which is
numerically equal within float32 rounding. The PyTorch path used for training and inference is
never modified.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsq_audio.errors import FsqAudioError
from fsq_audio.models.decoder import ISTFTDecoder

FILES = ("encoder.onnx", "decoder.onnx", "onnx.json")
FORMAT = "fsq-audio-onnx"
FORMAT_VERSION = 1
DEFAULT_OPSET = 17
INSTALL_HINT = "pip install 'fsq-audio[onnx]'"


# ---------------------------------------------------------------------------- export modules
class ExportISTFT(nn.Module):
    """`ISTFT` as real arithmetic: one transposed convolution does inverse DFT, window and overlap-add.

    The kernel row of bin k is c_k / n * (cos, -sin)(2 pi k t / n) * window[t], with c_k = 2
    except for the DC and Nyquist bins (c = 1, imaginary part ignored), as `torch.fft.irfft` does.
    """

    def __init__(self, n_fft: int, hop: int, window: Tensor):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        bins = n_fft // 2 + 1
        k, t = torch.arange(bins).view(-1, 1), torch.arange(n_fft).view(1, -1)
        angle = 2 * math.pi * ((k * t) % n_fft).double() / n_fft  # reduced mod n: exact angles
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        win = window.double().view(1, -1)
        cos, sin = angle.cos() * weight * win / n_fft, -angle.sin() * weight * win / n_fft
        sin[0] = 0.0
        if n_fft % 2 == 0:
            sin[-1] = 0.0
        self.register_buffer("kernel", torch.cat([cos, sin]).unsqueeze(1).float(), persistent=False)  # (2K, 1, n)
        self.register_buffer("window_sq", window.float().square().view(1, 1, -1), persistent=False)
        self.pad = (n_fft - hop) // 2
        self.tail = n_fft - hop - self.pad

    def forward(self, real: Tensor, imag: Tensor) -> Tensor:
        """(B, n_fft // 2 + 1, F) real and imaginary parts -> (B, F * hop) waveform."""
        y = F.conv_transpose1d(torch.cat([real, imag], dim=1), self.kernel, stride=self.hop)
        env = F.conv_transpose1d(torch.ones_like(real[:1, :1]), self.window_sq, stride=self.hop)
        end = -self.tail or None  # static bounds: exports for any frame count
        return y[:, 0, self.pad: end] / env[:, 0, self.pad: end].clamp_min(1e-8)


class ExportISTFTDecoder(nn.Module):
    """`ISTFTDecoder.forward` with `torch.polar` + `ISTFT` replaced by cos/sin + `ExportISTFT`
    (the network up to the spectrum is the decoder's own `spectrum`)."""

    def __init__(self, decoder: ISTFTDecoder):
        super().__init__()
        self.decoder = decoder
        self.istft = ExportISTFT(decoder.istft.n_fft, decoder.istft.hop, decoder.istft.window)

    def forward(self, z: Tensor) -> Tensor:
        """(B, latent_dim, F) -> (B, 1, F * hop)."""
        mag, phase = self.decoder.spectrum(z)
        return self.istft(mag * torch.cos(phase), mag * torch.sin(phase)).unsqueeze(1)


class EncoderGraph(nn.Module):
    """(N, 1, encode_window_samples) audio windows -> (N, S, encode_window_frames) int64 indices."""

    def __init__(self, codec: nn.Module):
        super().__init__()
        self.codec = codec
        self.ctx, self.win = codec.encoder_context, codec.config.encode_window_frames

    def forward(self, audio: Tensor) -> Tensor:
        z = self.codec.encoder(audio)[..., self.ctx: self.ctx + self.win]
        return self.codec.quantizer(z)[1].long()


class DecoderGraph(nn.Module):
    """(B, S', F) int64 indices of the first S' <= S stages -> (B, 1, F * hop) audio.

    Every stage is always computed; stages past S' (zero-padded) are multiplied by 0, so any
    prefix decodes in one graph and S' = S is `quantizer.decode_indices` operation for operation.
    """

    def __init__(self, codec: nn.Module):
        super().__init__()
        self.quantizer = codec.quantizer
        self.decoder = ExportISTFTDecoder(codec.decoder) if isinstance(codec.decoder, ISTFTDecoder) else codec.decoder

    def forward(self, indices: Tensor) -> Tensor:
        q, stages = self.quantizer, self.quantizer.num_stages
        pad = torch.zeros_like(indices[:, :1]).expand(-1, stages, -1)
        full = torch.cat([indices, pad], dim=1)[:, :stages]  # (B, S, F)
        present = torch.cat([torch.ones_like(indices[0, :, 0]), torch.zeros_like(pad[0, :, 0])])[:stages]
        z = None
        for k in range(stages):
            w = q.project_out[k].weight
            part = q.project_out[k](q.fsq.indices_to_codes(full[:, k]).to(w.dtype)) * present[k].to(w.dtype)
            z = part if z is None else z + part
        return self.decoder(z)


# ---------------------------------------------------------------------------- export
def require(*modules: str) -> None:
    """Raise a one-line FsqAudioError naming the extra to install if a module is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise FsqAudioError(f"ONNX export needs {' and '.join(missing)}: {INSTALL_HINT}")


def metadata(codec: nn.Module, opset: int) -> dict[str, Any]:
    """What a runtime needs to reproduce `Codec.encode` / `Codec.decode` windowing (onnx.json)."""
    from fsq_audio import __version__

    cfg = codec.config
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__,
        "model_id": codec.model_id, "name": cfg.name, "sample_rate": cfg.sample_rate,
        "hop_length": codec.hop_length, "frame_rate": codec.frame_rate, "levels": list(cfg.levels),
        "codebook_size": codec.codebook_size, "num_stages": codec.num_stages,
        "encode_window_frames": cfg.encode_window_frames, "encoder_context": codec.encoder_context,
        "encode_window_samples": codec.encode_window_samples,
        "decode_window_frames": cfg.decode_window_frames, "decoder_context": codec.decoder_context,
        "opset": opset, "torch_version": torch.__version__,
    }


def _export(module: nn.Module, example: Tensor, path: Path, names: tuple[str, str],
            dynamic: dict[str, dict[int, str]], opset: int, meta: dict[str, Any]) -> None:
    """Trace `module` to `path` (atomically) with `meta` as ONNX metadata_props."""
    import onnx

    from fsq_audio.fileio import atomic_path

    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings: the graphs are checked below
        try:
            torch.onnx.export(module, (example,), str(tmp), input_names=[names[0]], output_names=[names[1]],
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True)
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types; the CLI prints one line
            text = (str(exc).strip().splitlines() or [""])[0][:300]
            raise FsqAudioError(f"ONNX export of {path.name} failed (opset {opset}): "
                                f"{type(exc).__name__}: {text}") from exc
        model = onnx.load(str(tmp))
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise FsqAudioError(f"ONNX export of {path.name}: the graph does not validate (opset {opset}): "
                                f"{(str(exc).strip().splitlines() or [''])[0][:300]}") from exc
        onnx.helper.set_model_props(model, {k: json.dumps(v) for k, v in meta.items()})
        onnx.save(model, str(tmp))


@torch.no_grad()
def export_onnx(codec: nn.Module, output: str | Path, opset: int = DEFAULT_OPSET, force: bool = False) -> Path:
    """Write encoder.onnx, decoder.onnx and onnx.json for an inference-ready (`prepare_for_inference`)
    float32 CPU codec, as `Codec.from_pretrained` returns it.

    Raises:
        FsqAudioError: `output` exists and is not empty (without `force`), onnx is missing, the codec
            is not float32 on CPU, or the exporter fails.
    """
    from fsq_audio.fileio import atomic_write_text

    require("onnx")
    if codec.device.type != "cpu" or next(codec.parameters()).dtype != torch.float32:
        raise FsqAudioError("ONNX export needs a float32 codec on CPU")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise FsqAudioError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise FsqAudioError(f"{out}: exists (use --force to replace)")
    meta = metadata(codec, opset)
    out.mkdir(parents=True, exist_ok=True)
    (out / "onnx.json").unlink(missing_ok=True)  # written last: marks a complete export
    windows = torch.zeros(2, 1, codec.encode_window_samples)
    _export(EncoderGraph(codec).eval(), windows, out / "encoder.onnx", ("audio", "indices"),
            {"audio": {0: "windows"}, "indices": {0: "windows"}}, opset, meta)
    indices = torch.zeros(2, codec.num_stages, 2 * codec.decoder_context + 1, dtype=torch.int64)
    _export(DecoderGraph(codec).eval(), indices, out / "decoder.onnx", ("indices", "audio"),
            {"indices": {0: "batch", 1: "stages", 2: "frames"}, "audio": {0: "batch", 2: "samples"}}, opset, meta)
    atomic_write_text(out / "onnx.json", json.dumps(meta, indent=2) + "\n")
    return out


# ---------------------------------------------------------------------------- onnxruntime helpers
def frame_audio(audio: np.ndarray, meta: dict[str, Any]) -> tuple[np.ndarray, int]:
    """Cut (T,) audio into the encoder's windows, as `Codec.encode` does.

    Returns:
        (windows (N, 1, encode_window_samples) float32, frames = ceil(T / hop)); the encoder's
        (N, S, W) output, concatenated along frames, gives the indices (S, frames) after cutting.
    """
    hop, win, ctx = meta["hop_length"], meta["encode_window_frames"], meta["encoder_context"]
    frames = max(1, math.ceil(len(audio) / hop))
    n_win = math.ceil(frames / win)
    padded = np.zeros((n_win * win + 2 * ctx) * hop, dtype=np.float32)
    padded[ctx * hop: ctx * hop + len(audio)] = audio
    starts = np.arange(n_win) * win * hop
    windows = np.stack([padded[s: s + meta["encode_window_samples"]] for s in starts])
    return windows[:, None, :], frames


def encode_audio(session: Any, audio: np.ndarray, meta: dict[str, Any], max_windows: int = 1) -> np.ndarray:
    """(T,) float32 audio -> (S, ceil(T / hop)) int64 indices with an encoder.onnx session."""
    windows, frames = frame_audio(audio, meta)
    parts = [session.run(None, {"audio": windows[i: i + max_windows]})[0] for i in range(0, len(windows), max_windows)]
    idx = np.concatenate(parts)  # (N, S, W)
    return np.concatenate(list(idx), axis=-1)[:, :frames]


def decode_frames(session: Any, indices: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """(S', F) int64 indices -> (F * hop,) float32 audio with a decoder.onnx session, windowed as
    `Codec.decode` (decode_window_frames, with decoder_context frames of context per side)."""
    win, ctx, hop, frames = meta["decode_window_frames"], meta["decoder_context"], meta["hop_length"], indices.shape[-1]
    pieces = []
    for start in range(0, frames, win):
        lo, hi = max(0, start - ctx), min(frames, start + win + ctx)
        y = session.run(None, {"indices": np.ascontiguousarray(indices[None, :, lo:hi], dtype=np.int64)})[0]
        pieces.append(y[0, 0, (start - lo) * hop: (min(frames, start + win) - lo) * hop])
    return np.concatenate(pieces)


def session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU InferenceSession with `threads` intra-op threads (0: onnxruntime's default)."""
    require("onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def synthetic_speech(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like (T,) float32 signal: a gliding harmonic tone in amplitude bursts, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(h * phase) / h for h in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    return (0.2 * voiced + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


@torch.no_grad()
def check_parity(codec: nn.Module, directory: str | Path, seconds: float = 2.0) -> dict[str, float | int]:
    """onnxruntime vs PyTorch on `synthetic_speech(seconds)` (one thread each).

    Returns:
        index_mismatch: fraction of encoder indices that differ from `Codec.encode_windows`;
        distinct_codes: distinct stage-1 codes of the signal (1 means the comparison is trivial);
        decoder_max_abs / decoder_prefix_max_abs: max |ONNX - PyTorch| of the decoder on the
        PyTorch indices, all stages / the first stage only; audio_peak: max |PyTorch audio|.
    """
    from fsq_audio.models.codec import canonical_threads

    directory = Path(directory)
    meta = json.loads((directory / "onnx.json").read_text())
    audio = synthetic_speech(seconds, meta["sample_rate"])
    windows, frames = frame_audio(audio, meta)
    with canonical_threads(torch.device("cpu")):
        ref_idx = codec.encode_windows(torch.from_numpy(windows))
        idx = torch.cat(list(ref_idx), dim=-1)[None, :, :frames]
        ref = {s: codec.decoder(codec.quantizer.decode_indices(idx[:, :s])).numpy() for s in (codec.num_stages, 1)}
    onnx_idx = session(directory / "encoder.onnx").run(None, {"audio": windows})[0]
    dec = session(directory / "decoder.onnx")
    got = {s: dec.run(None, {"indices": idx[:, :s].numpy()})[0] for s in ref}
    return {
        "index_mismatch": float((onnx_idx != ref_idx.numpy()).mean()),
        "distinct_codes": int(np.unique(ref_idx[:, 0].numpy()).size),
        "decoder_max_abs": float(np.abs(got[codec.num_stages] - ref[codec.num_stages]).max()),
        "decoder_prefix_max_abs": float(np.abs(got[1] - ref[1]).max()),
        "audio_peak": float(np.abs(ref[codec.num_stages]).max()),
    }


# ---------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `fsq-audio export-onnx`."""
    p.add_argument("-m", "--model", help="model name or release directory (default: the shipped model)")
    p.add_argument("-o", "--output", required=True, help="directory to write encoder.onnx, decoder.onnx, onnx.json")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("-f", "--force", action="store_true", help="write into an existing, non-empty directory")
    p.add_argument("--check", action="store_true", help="compare onnxruntime with PyTorch on a 2 s test signal")


def run(args: argparse.Namespace) -> int:
    """Export `--model` to `--output` and, with `--check`, print the parity with PyTorch."""
    from fsq_audio.models.codec import Codec

    require("onnx", *(["onnxruntime"] if args.check else []))
    if not 14 <= args.opset <= 21:  # LayerNormalization needs 17; older opsets decompose it
        raise FsqAudioError(f"--opset must be in 14..21, got {args.opset}")
    codec = Codec.from_pretrained(args.model)
    out = export_onnx(codec, args.output, args.opset, args.force)
    print(f"exported {out}/{{{','.join(FILES)}}} (model {codec.model_id}, opset {args.opset})")
    if args.check:
        r = check_parity(codec, out)
        print(f"check (2 s test signal, onnxruntime vs PyTorch): encoder indices differing {r['index_mismatch']:.2%} "
              f"({r['distinct_codes']} distinct stage-1 codes); "
              f"decoder max abs diff {r['decoder_max_abs']:.2e} (all stages), {r['decoder_prefix_max_abs']:.2e} "
              f"(stage 1) at audio peak {r['audio_peak']:.3f}")
    return 0
