"""Fixtures for robustness tests: thread-count hygiene and a tiny codec whose tokens vary with the input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsq_audio import Codec, CodecConfig, audio
from codec_fixtures import calibrate


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """`--threads` sets torch's thread count for the whole process; give other tests theirs back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def varied_model_dir(tmp_path_factory: pytest.TempPathFactory, speech_clip: Path) -> Path:
    """Release dir of a tiny codec whose latents are rescaled so speech spreads over many FSQ cells.

    A fresh random encoder maps nearly everything to one code, which would make token-equality
    checks (determinism) pass trivially.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        codec = Codec(CodecConfig.tiny()).prepare_for_inference()
    x, _ = audio.load(speech_clip, 16000)
    wav = torch.from_numpy(x)[None]
    calibrate(codec, wav)
    directory = tmp_path_factory.mktemp("varied_codec")
    codec.save_pretrained(str(directory))
    return directory
