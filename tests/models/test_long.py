"""Long inputs: windowed (chunked) decoding matches decoding the whole sequence at once."""

from __future__ import annotations

import pytest
import torch

from _codec_helpers import tile
from fsq_audio import Codec, CodecConfig

SECONDS = 30


@pytest.fixture(scope="module")
def long_indices(lively_codec, speech) -> torch.Tensor:
    """Tokens (1, S, 1500) of a 30 s clip built from real speech."""
    wav = tile(speech, SECONDS * lively_codec.sample_rate, seed=3)
    idx = lively_codec.encode(wav)
    assert idx.shape == (1, lively_codec.num_stages, SECONDS * 50)
    return idx


@pytest.mark.parametrize("overrides", [dict(decoder="istft"), dict(decoder="conv"),
                                       dict(decoder="istft", causal=True), dict(decoder="conv", causal=True)],
                         ids=["istft", "conv", "istft-causal", "conv-causal"])
def test_chunked_decode_matches_whole_decode(long_indices: torch.Tensor, overrides: dict) -> None:
    torch.manual_seed(0)
    codec = Codec(CodecConfig.tiny(**overrides)).prepare_for_inference()
    frames = long_indices.shape[-1]
    whole = codec.decode(long_indices, window_frames=frames)
    assert whole.shape == (1, 1, frames * codec.hop_length)
    assert float(whole.abs().max()) > 1e-3  # not trivially silent
    for window in (codec.config.decode_window_frames, 7):
        chunked = codec.decode(long_indices, window_frames=window)
        assert chunked.shape == whole.shape
        assert float((chunked - whole).abs().max()) < 1e-4, f"window {window}"


def test_streaming_pieces_concatenate_to_decode(lively_codec, long_indices: torch.Tensor) -> None:
    idx = long_indices[..., :333]
    pieces = list(lively_codec.iter_decode(idx, window_frames=50))
    assert [p.shape[-1] for p in pieces] == [50 * 320] * 6 + [33 * 320]
    assert torch.equal(torch.cat(pieces, dim=-1), lively_codec.decode(idx, window_frames=50))


def test_chunked_decode_of_the_full_size_architecture() -> None:
    """The default (shipped) architecture's decoder context is large enough too."""
    torch.manual_seed(0)
    codec = Codec(CodecConfig()).prepare_for_inference()
    idx = torch.randint(0, codec.codebook_size, (1, codec.num_stages, 120), generator=torch.Generator().manual_seed(0))
    whole = codec.decode(idx, window_frames=120)
    assert float((codec.decode(idx, window_frames=7) - whole).abs().max()) < 1e-4
