"""Export a training run's generator as an inference release (safetensors + config.json)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from fsq_audio.checkpoint import replace_release
from fsq_audio.errors import ConfigError, FsqAudioError, ModelError
from fsq_audio.models.codec import Codec
from fsq_audio.train import checkpoints
from fsq_audio.train.config_io import load_resolved


def export_run(run_dir: str, output: str, checkpoint: str | None = None, use_ema: bool = True,
               name: str | None = None, force: bool = False) -> Path:
    """Load the generator of `checkpoint` (default: latest) and write it to `output`."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise FsqAudioError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise FsqAudioError(f"{out}: exists (use --force to replace)")
    config = load_resolved(run_dir)
    ckpt = Path(checkpoint) if checkpoint else checkpoints.latest_checkpoint(run_dir)
    if ckpt is None or not (ckpt / checkpoints.STATE_FILE).is_file():
        raise ConfigError(f"{run_dir}: no complete checkpoint to export")
    model_cfg = dataclasses.replace(config.model, name=name) if name else config.model
    gen = Codec(model_cfg)
    weights = ckpt / ("ema.safetensors" if use_ema and (ckpt / "ema.safetensors").is_file() else "model.safetensors")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"{weights}: cannot read generator weights ({exc})") from None
    full = gen.state_dict()
    full.update(state)
    gen.load_state_dict(full, strict=True)
    return replace_release(gen, out)
