"""LM release directories: `config.json` + `model.safetensors` (+ SHA256SUMS). Never pickle.

config.json keys:
    format_version (int)   layout version of this directory (FORMAT_VERSION)
    package_version (str)  fsq_audio version that wrote it
    kind (str)             "lm"
    codec_model_id (str)   model_id of the codec whose tokens the LM was trained on
    config (dict)          LMConfig fields (codec_id repeats codec_model_id)

The LM's identity (`lm_id`, written into entropy-coded .fsqa headers) is
'<name>-<sha256(config, weights)[:12]>', computed like the codec's model_id.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from fsq_audio import __version__
from fsq_audio.checkpoint import find_release, model_search_path, release_identity
from fsq_audio.config import from_dict, to_dict
from fsq_audio.errors import ConfigError, ModelError
from fsq_audio.fileio import atomic_write_bytes, atomic_write_text, write_checksums
from fsq_audio.lm.config import LMConfig
from fsq_audio.lm.model import TokenLM

FORMAT_VERSION = 1


def lm_identity(config: LMConfig, weights: bytes) -> str:
    """The LM's identity, computed like a codec's model_id (`release_identity`)."""
    return release_identity(config, weights)


def _weights_bytes(lm: TokenLM) -> bytes:
    state = {k: v.detach().float().cpu().contiguous() for k, v in lm.state_dict().items()}
    return save(state, metadata={"format": "pt"})


def save_lm(lm: TokenLM, directory: str | os.PathLike) -> str:
    """Write the release of `lm` (float32 weights); returns its lm_id."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = _weights_bytes(lm)
    meta = {"format_version": FORMAT_VERSION, "package_version": __version__, "kind": "lm",
            "codec_model_id": lm.config.codec_id, "config": to_dict(lm.config)}
    atomic_write_bytes(directory / "model.safetensors", weights)
    atomic_write_text(directory / "config.json", json.dumps(meta, indent=2) + "\n")
    write_checksums(directory, ("config.json", "model.safetensors"))
    return lm_identity(lm.config, weights)


def read_lm_config(directory: str | os.PathLike) -> LMConfig:
    """Parse and validate a release's config.json (unknown keys are refused)."""
    path = Path(directory) / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{directory}: no config.json (not an LM directory)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != "lm" or "config" not in meta:
        raise ModelError(f"{path}: not a token LM (expected kind='lm'; a codec directory?)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: format_version {meta.get('format_version')!r} not supported")
    try:
        return from_dict(LMConfig, meta["config"], "config").validate()
    except ConfigError as exc:
        raise ModelError(f"{path}: {exc}") from None


def load_lm(directory: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[TokenLM, str]:
    """Rebuild a TokenLM (eval mode) with strict key/shape checks. Returns (lm, lm_id)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"{directory}: no such LM directory")
    config = read_lm_config(directory)
    path = directory / "model.safetensors"
    try:
        raw = path.read_bytes()
        state = load(raw)
    except FileNotFoundError:
        raise ModelError(f"{directory}: no model.safetensors (pickle files are never loaded)") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a valid safetensors file ({exc})") from None
    lm = TokenLM(config)
    expected = lm.state_dict()
    bad = sorted(set(expected) ^ set(state)) + [k for k in expected if k in state
                                                 and state[k].shape != expected[k].shape]
    if bad:
        raise ModelError(f"{path}: weights do not match config.json ({', '.join(bad[:3])}...)")
    lm.load_state_dict(state, strict=True)
    return lm.eval().to(device), lm_identity(config, raw)


def check_codec(config: LMConfig, codec_id: str, what: str = "LM") -> None:
    """Refuse a codec other than the one the LM was trained on (one-line ModelError)."""
    if config.codec_id != codec_id:
        raise ModelError(f"{what} {config.name} was trained on tokens of codec {config.codec_id}, "
                         f"not {codec_id}; pass the matching --model or LM")


def resolve_lm(name_or_dir: str | os.PathLike) -> Path:
    """An LM release directory from a path or a name in the model search path."""
    found = find_release(str(name_or_dir))
    if found is None:
        where = ", ".join(map(str, model_search_path()))
        raise ModelError(f"LM '{name_or_dir}' not found (not a directory, nor in {where})")
    return found


def find_lm(codec_id: str, lm_id: str | None = None) -> Path | None:
    """The first installed LM (model search path, sorted by name) trained on codec `codec_id`;
    with `lm_id`, only the LM with exactly that identity (name and weights)."""
    for root in model_search_path():
        for config_path in sorted(root.glob("*/config.json")) if root.is_dir() else []:
            try:
                config = read_lm_config(config_path.parent)  # codec releases and junk raise ModelError
            except ModelError:
                continue
            if config.codec_id != codec_id:
                continue
            if lm_id is None:
                return config_path.parent
            try:
                if lm_id.startswith(config.name + "-") and lm_identity(
                        config, (config_path.parent / "model.safetensors").read_bytes()) == lm_id:
                    return config_path.parent
            except OSError:
                continue
    return None
