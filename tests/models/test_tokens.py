"""Reproducible tokens: an utterance's indices depend only on its own samples.

Real speech through random (calibrated) tiny codecs whose encode windows are small, so each
clip spans several windows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fsq_audio import api
from _codec_helpers import make_codec, tile


@pytest.fixture(scope="module", params=[20, 7], ids=["win20", "win7"])
def codec(request, speech):
    return make_codec(speech, encode_window_frames=request.param)


def test_tokens_vary_and_span_several_windows(codec, speech) -> None:
    idx = codec.encode(speech)
    frames = idx.shape[-1]
    assert frames == math.ceil(speech.shape[-1] / codec.hop_length)
    assert frames >= 3 * codec.config.encode_window_frames
    for stage in range(codec.num_stages):
        assert idx[0, stage].unique().numel() >= 10  # the test would be vacuous with constant tokens


def test_same_tokens_alone_and_in_a_padded_batch(codec, speech) -> None:
    alone = codec.encode(speech)
    length = speech.shape[-1]
    longer = tile(speech.flip(-1), int(2.3 * length), seed=1)
    longest = tile(speech, 4 * length + 123, seed=2) + 0.01 * torch.randn(1, 1, 4 * length + 123)
    batch = torch.zeros(3, 1, longest.shape[-1])
    batch[1, :, : longer.shape[-1]] = longer
    batch[0, :, :length] = speech
    batch[2] = longest
    for order in ([0, 1, 2], [2, 1, 0]):
        out = codec.encode(batch[order])
        row = order.index(0)
        assert torch.equal(out[row, :, : alone.shape[-1]], alone[0])
    assert torch.equal(codec.encode(batch[1:2])[..., : math.ceil(longer.shape[-1] / codec.hop_length)],
                       codec.encode(longer))


@pytest.mark.parametrize("block", [7, 320, 1000, 9600, 9601, 10**6])
def test_same_tokens_from_streamed_blocks(codec, speech, block: int) -> None:
    alone = codec.encode(speech)[0].numpy()
    x = speech[0, 0].numpy()
    blocks = (x[i: i + block] for i in range(0, len(x), block))
    idx, seen = api.encode_blocks(codec, blocks, batch_windows=3)
    assert seen == len(x)
    np.testing.assert_array_equal(idx, alone)


def test_streamed_blocks_with_fewer_stages(codec, speech) -> None:
    x = speech[0, 0].numpy()
    idx, _ = api.encode_blocks(codec, iter([x[:5000], x[5000:]]), stages=2)
    np.testing.assert_array_equal(idx, codec.encode(speech, stages=2)[0].numpy())


def test_same_tokens_with_one_or_two_threads(codec, speech) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.encode(speech)
        torch.set_num_threads(2)
        two = codec.encode(speech)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


def test_tokens_of_a_shifted_copy_differ(codec, speech) -> None:
    """Sanity check that the comparisons above can fail: a one-sample shift changes the tokens."""
    shifted = torch.nn.functional.pad(speech, (1, 0))[..., : speech.shape[-1]]
    assert not torch.equal(codec.encode(shifted), codec.encode(speech))


def test_full_size_encoder_same_tokens_at_any_thread_count(speech) -> None:
    """The default architecture (where reduction order matters) gives one-thread tokens at 2 threads,
    and `encode` leaves the caller's thread setting as it was."""
    codec = make_codec(speech, encoder_channels=8, latent_dim=256, encode_window_frames=50)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.encode(speech)
        torch.set_num_threads(2)
        two = codec.encode(speech, max_windows=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(one, two)
