"""Shared fixtures: a tiny random codec saved as a release directory, and a real speech clip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsq_audio import Codec, CodecConfig

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Run torch on one thread: the test machine's cores are shared, and oversubscribed
    intra-op threads make small convolutions many times slower. Tests that compare thread
    counts set them explicitly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release directory (config.json + model.safetensors) of `Codec(CodecConfig.tiny())`, seeded.

    Shared by the whole session: tests must not modify it (copy it first).
    """
    directory = tmp_path_factory.mktemp("tiny_model")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        Codec(CodecConfig.tiny()).save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def speech_clip() -> Path:
    """A real 1.6 s, 16 kHz mono speech clip (CMU ARCTIC; see tests/data/README.md). Read-only."""
    return DATA / "cmu_arctic_us_axb_a0005.flac"
