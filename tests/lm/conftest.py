"""LM fixtures: a tiny codec, a tiny random LM release for it, and token shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lm_helpers import patterned_tokens, save_tiny_lm, write_shards

from fsq_audio import Codec, CodecConfig, audio
from codec_fixtures import calibrate


@pytest.fixture(scope="session")
def codec_dir(tmp_path_factory, speech_clip) -> Path:
    """A tiny random codec whose encoder is rescaled so real speech gives varied tokens (read-only)."""
    x, _ = audio.load(speech_clip, sample_rate=16000)
    wav = torch.from_numpy(x)[None]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        codec = Codec(CodecConfig.tiny()).prepare_for_inference()
    calibrate(codec, wav)
    directory = tmp_path_factory.mktemp("lively_codec")
    codec.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_codec(codec_dir) -> Codec:
    return Codec.from_pretrained(str(codec_dir))


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory, tiny_codec) -> Path:
    """A random tiny LM release for the session's tiny codec (read-only)."""
    return save_tiny_lm(tmp_path_factory.mktemp("tiny_lm"), tiny_codec.model_id)


@pytest.fixture(scope="session")
def token_dir(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("tokens"), patterned_tokens(8))
