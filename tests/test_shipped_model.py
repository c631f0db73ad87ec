"""The shipped default model: loads by default, round-trips the bundled example, and is documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fsq_audio import audio
from fsq_audio.checkpoint import DEFAULT_MODEL, resolve_model

REPO = Path(__file__).resolve().parents[1]


def test_default_model_is_shipped_with_a_model_card(monkeypatch):
    monkeypatch.delenv("FSQ_AUDIO_MODELS", raising=False)
    monkeypatch.delenv("FSQ_AUDIO_MODEL", raising=False)
    release = resolve_model(None)
    assert release.resolve() == (REPO / "pretrained" / DEFAULT_MODEL).resolve()
    assert (release / "model.safetensors").stat().st_size < 40e6  # issue 8: weights under 40 MB
    card = (release / "README.md").read_text(encoding="utf-8")
    for section in ("## Architecture", "## Training data", "## Compute used", "## Measured quality",
                    "## Measured speed", "## Known limitations"):
        assert section in card, section


def test_default_model_codes_the_example_with_varied_tokens(tmp_path, monkeypatch):
    """Catches a shipped model whose codes collapsed (the v0.1 failure) and a release the code
    cannot load (e.g. an older format_version)."""
    from fsq_audio.api import compress_file, read_indices
    from fsq_audio.models.codec import Codec

    monkeypatch.delenv("FSQ_AUDIO_MODELS", raising=False)
    monkeypatch.delenv("FSQ_AUDIO_MODEL", raising=False)
    codec = Codec.from_pretrained(None)
    example = REPO / "examples" / "p225_022.wav"
    compress_file(example, tmp_path / "x.fsqa", codec)
    _, idx = read_indices(tmp_path / "x.fsqa", codec)
    x, sr = audio.load(example, sample_rate=codec.sample_rate)
    assert idx.shape[1] == int(np.ceil(x.shape[-1] / codec.hop_length))
    for stage in range(idx.shape[0]):
        distinct = len(np.unique(idx[stage]))
        assert distinct > idx.shape[1] // 4, f"stage {stage + 1}: only {distinct} distinct codes"
