"""Fixtures for model tests: the speech clip as a tensor and a calibrated tiny codec."""

from __future__ import annotations

import pytest
import torch

from _codec_helpers import load_speech, make_codec
from fsq_audio import Codec


@pytest.fixture(scope="session")
def speech(speech_clip) -> torch.Tensor:
    return load_speech(speech_clip)


@pytest.fixture(scope="session")
def lively_codec(speech) -> Codec:
    """Tiny istft codec (encode window 20 frames) with latents calibrated on the speech clip."""
    return make_codec(speech)
