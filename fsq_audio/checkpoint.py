"""Release directories: `config.json` + `model.safetensors` (+ SHA256SUMS). Never pickle.

config.json keys:
    format_version (int)   layout version of this directory (FORMAT_VERSION)
    package_version (str)  fsq_audio version that wrote it
    kind (str)             "codec"
    config (dict)          CodecConfig fields
Weights are the inference form (weight norm folded), loaded with strict key/shape checks.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from fsq_audio import __version__
from fsq_audio.config import CodecConfig, from_dict, to_dict
from fsq_audio.errors import ConfigError, ModelError
from fsq_audio.fileio import atomic_write_bytes, atomic_write_text, replace_dir, write_checksums

# 2: residual FSQ without the fixed (L-1)^-k stage input scaling of 1 (same keys, other meaning)
FORMAT_VERSION = 2
DEFAULT_MODEL = "fsq-speech-16k"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


def model_search_path() -> list[Path]:
    """Folders searched for a model given by name: $FSQ_AUDIO_MODELS, then the repo's pretrained/."""
    paths = [Path(p) for p in os.environ.get("FSQ_AUDIO_MODELS", "").split(os.pathsep) if p]
    paths.append(Path(__file__).resolve().parents[1] / "pretrained")
    return paths


def find_release(name: str) -> Path | None:
    """`name` itself if it is a directory, else the first search-path folder `name` with a config.json."""
    if Path(name).is_dir():
        return Path(name)
    for root in model_search_path():
        if (root / name / "config.json").is_file():
            return root / name
    return None


def resolve_model(name_or_dir: str | os.PathLike | None) -> Path:
    """The release directory for a path or a model name (None: the default shipped model)."""
    name = str(name_or_dir) if name_or_dir is not None else os.environ.get("FSQ_AUDIO_MODEL", DEFAULT_MODEL)
    found = find_release(name)
    if found is not None:
        return found
    if name_or_dir is None:
        raise ModelError(f"default model '{name}' is not installed; pass --model DIR")
    raise ModelError(f"model '{name}' not found (not a directory, nor in {', '.join(map(str, model_search_path()))})")


def inference_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict with weight norm folded (a copy if the model is parametrized)."""
    from fsq_audio.nn.layers import remove_weight_norm

    model = copy.deepcopy(model).cpu()
    remove_weight_norm(model)
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def _config_json(config: CodecConfig) -> dict:
    return {"format_version": FORMAT_VERSION, "package_version": __version__, "kind": "codec",
            "config": to_dict(config)}


def release_identity(config, weights: bytes) -> str:
    """'<config.name>-<sha256(config, weights)[:12]>': the identity of a codec or LM release."""
    h = hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode())
    h.update(weights)
    return f"{config.name}-{h.hexdigest()[:12]}"


def _weights_bytes(model: torch.nn.Module) -> bytes:
    return save(inference_state_dict(model), metadata={"format": "pt"})


def compute_model_id(model: torch.nn.Module) -> str:
    """'<name>-<sha256(config, weights)[:12]>' of an in-memory model (what save would record)."""
    return release_identity(model.config, _weights_bytes(model))


def save_pretrained(model: torch.nn.Module, directory: str | os.PathLike) -> Path:
    """Write the inference release of a codec: config.json, model.safetensors, SHA256SUMS."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / "model.safetensors", _weights_bytes(model))
    atomic_write_text(directory / "config.json", json.dumps(_config_json(model.config), indent=2) + "\n")
    write_checksums(directory, ("config.json", "model.safetensors"))
    return directory


RELEASE_FILES = ("config.json", "model.safetensors", "SHA256SUMS")


def replace_release(model: torch.nn.Module, directory: str | os.PathLike) -> Path:
    """Write `model`'s release into `directory`, replacing an older one in one rename; files that
    are not part of a release (the model card README.md, samples) are kept (`replace_dir`)."""
    return replace_dir(directory, lambda tmp: save_pretrained(model, tmp), RELEASE_FILES)


def read_config(directory: str | os.PathLike) -> CodecConfig:
    """Parse and validate a release's config.json (unknown keys are refused)."""
    path = Path(directory) / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{directory}: no config.json (not a model directory)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelError(f"{path}: not valid JSON ({type(exc).__name__}: {exc})") from None
    except OSError as exc:  # e.g. a directory named config.json
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(meta, dict) or meta.get("kind", "codec") != "codec" or "config" not in meta:
        raise ModelError(f"{path}: not a codec config (expected keys format_version, kind='codec', config)")
    unknown = sorted(set(meta) - {"format_version", "package_version", "kind", "config"})
    if unknown:
        raise ModelError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}")
    if meta.get("format_version") == 1:
        raise ModelError(f"{path}: format_version 1 (fsq_audio 0.1, whose residual stages were scaled "
                         f"differently) is not supported by this fsq_audio {__version__}; retrain or re-export")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: format_version {meta.get('format_version')!r} not supported "
                         f"(this fsq_audio reads {FORMAT_VERSION})")
    try:
        return from_dict(CodecConfig, meta["config"], "config")
    except ConfigError as exc:
        raise ModelError(f"{path}: {exc}") from None
    except (ArithmeticError, ValueError) as exc:  # e.g. istft_hop 0 in CodecConfig's own checks
        raise ModelError(f"{path}: invalid config ({type(exc).__name__}: {exc})") from None


def check_weights(weights_path: Path, config: CodecConfig) -> None:
    """Compare tensor names and shapes in a safetensors file (its header only) with those of `config`'s
    inference model (built on the meta device, so nothing is allocated). Raises ModelError."""
    from fsq_audio.models.codec import Codec

    try:
        with safe_open(str(weights_path), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights_path}: not a valid safetensors file ({exc})") from None
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. zero-element tensors: the error below says what is wrong
            expected = {k: tuple(v.shape) for k, v in Codec(config).prepare_for_inference().state_dict().items()}
    except (RuntimeError, ArithmeticError, ValueError, TypeError) as exc:  # e.g. a negative or zero size
        path = weights_path.parent / "config.json"
        raise ModelError(f"{path}: describes no buildable model ({type(exc).__name__}: {exc})") from None
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    bad_shape = [k for k in expected if k in found and found[k] != expected[k]]
    if missing or unexpected or bad_shape:
        detail = "; ".join(f"{n}: {', '.join(v[:3])}{'...' if len(v) > 3 else ''}" for n, v in
                           (("missing", missing), ("unexpected", unexpected), ("shape mismatch", bad_shape)) if v)
        raise ModelError(f"{weights_path}: weights do not match config.json ({detail})")


def load_pretrained(name_or_dir: str | os.PathLike | None, device: str | torch.device = "cpu"):
    """Rebuild a Codec from a release directory: strict keys and shapes, inference-ready."""
    from fsq_audio.models.codec import Codec

    directory = resolve_model(name_or_dir)
    weights_path = directory / "model.safetensors"
    if not weights_path.is_file():
        pickles = [p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f" (found {', '.join(pickles)}: pickle files are never loaded)" if pickles else ""
        raise ModelError(f"{directory}: no model.safetensors{hint}")
    config = read_config(directory)
    check_weights(weights_path, config)  # before allocating: config.json may describe a huge model
    raw = weights_path.read_bytes()
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights_path}: not a valid safetensors file ({exc})") from None
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:
        more = "..." if len(broken) > 3 else ""
        raise ModelError(f"{weights_path}: NaN/Inf weights in {', '.join(broken[:3])}{more}")
    model = Codec(config).prepare_for_inference()
    model.load_state_dict(state, strict=True)
    model._model_id = release_identity(config, raw)
    return model.to(device)
