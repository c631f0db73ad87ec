"""Shapes and inference behaviour of the codec (fsq_audio.models.codec) with tiny random models."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fsq_audio import Codec, CodecConfig

LENGTHS = [1, 100, 320, 321, 4567]
VARIANTS = {
    "istft": dict(decoder="istft"),
    "conv": dict(decoder="conv"),
    "istft-causal": dict(decoder="istft", causal=True),
    "conv-causal": dict(decoder="conv", causal=True, activation="snake"),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def codec(request) -> Codec:
    torch.manual_seed(0)
    return Codec(CodecConfig.tiny(**VARIANTS[request.param])).eval()


@pytest.fixture(scope="module", params=[False, True], ids=["noncausal", "causal"])
def encoder_codec(request) -> Codec:
    """Encode-only tests: the decoder type does not matter, causality does."""
    torch.manual_seed(0)
    return Codec(CodecConfig.tiny(causal=request.param)).eval()


def test_properties() -> None:
    codec = Codec(CodecConfig.tiny())
    assert codec.sample_rate == 16000 and codec.hop_length == 320 and codec.frame_rate == 50.0
    assert codec.codebook_size == 1000 and codec.bits_per_code == 10 and codec.num_stages == 3
    assert codec.bitrate() == 50.0 * 3 * 10 and codec.bitrate(1) == 500.0
    assert codec.stages_for_bitrate(1000) == 2 and codec.stages_for_bitrate(1) == 1
    assert codec.stages_for_bitrate(1e9) == 3


@pytest.mark.parametrize("length", LENGTHS)
def test_encode_decode_shapes(codec: Codec, length: int) -> None:
    wav = 0.1 * torch.randn(2, 1, length, generator=torch.Generator().manual_seed(length))
    frames = max(1, math.ceil(length / codec.hop_length))
    idx = codec.encode(wav)
    assert idx.shape == (2, codec.num_stages, frames) and idx.dtype == torch.int64
    assert int(idx.min()) >= 0 and int(idx.max()) < codec.codebook_size
    assert codec.encode(wav, stages=2).shape == (2, 2, frames)
    for stages in (1, codec.num_stages):
        out = codec.decode(idx[:, :stages])
        assert out.shape == (2, 1, frames * codec.hop_length) and out.dtype == torch.float32
        assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize("length", [1, 321, 4567])
def test_forward_shapes(codec: Codec, length: int) -> None:
    wav = 0.1 * torch.randn(3, 1, length)
    with torch.no_grad():
        out, idx = codec(wav)
    assert out.shape == (3, 1, length)
    assert idx.shape == (3, codec.num_stages, math.ceil(length / codec.hop_length))
    with torch.no_grad():
        assert codec(wav, n_stages=1)[1].shape[1] == 1


def test_fewer_stages_give_a_prefix_of_the_tokens(encoder_codec: Codec) -> None:
    codec = encoder_codec
    wav = 0.1 * torch.randn(1, 1, 5000, generator=torch.Generator().manual_seed(1))
    full = codec.encode(wav)
    for n in range(1, codec.num_stages + 1):
        assert torch.equal(codec.encode(wav, stages=n), full[:, :n])


def test_encode_batching_of_windows_is_invisible(encoder_codec: Codec) -> None:
    codec = encoder_codec
    wav = 0.1 * torch.randn(2, 1, 20000, generator=torch.Generator().manual_seed(2))
    ref = codec.encode(wav)
    for max_windows in (1, 3, 1000):
        assert torch.equal(codec.encode(wav, max_windows=max_windows), ref)


def test_bad_inputs_are_refused() -> None:
    codec = Codec(CodecConfig.tiny()).eval()
    with pytest.raises(ValueError):
        codec.encode(torch.zeros(1, 2, 1000))  # two channels
    with pytest.raises(ValueError):
        codec.encode(torch.zeros(1000))
    with pytest.raises(ValueError):
        codec.encode(torch.zeros(1, 1, 1000), stages=4)
    with pytest.raises(ValueError):
        codec.decode(torch.full((1, 1, 5), codec.codebook_size))
    with pytest.raises(ValueError):
        codec.decode(torch.full((1, 1, 5), -1))
    with pytest.raises(ValueError):
        codec.decode(torch.zeros(1, 4, 5, dtype=torch.long))  # more stages than the model has
    with pytest.raises(ValueError):
        codec.decode(torch.zeros(1, 5, dtype=torch.long))


def window_latents(codec: Codec, wav: torch.Tensor) -> torch.Tensor:
    """Encoder latents (B, D, F) computed window by window, as `Codec.encode` does."""
    windows, frames, n_win = codec._encode_windows(wav)
    ctx, win = codec.encoder_context, codec.config.encode_window_frames
    with torch.no_grad():
        z = codec.encoder(windows)[..., ctx: ctx + win]  # (B * n_win, D, win)
    z = z.view(wav.shape[0], n_win, z.shape[1], win).permute(0, 2, 1, 3).reshape(wav.shape[0], z.shape[1], -1)
    return z[..., :frames]


@pytest.mark.parametrize("config", [CodecConfig.tiny(), CodecConfig.tiny(causal=True), CodecConfig()],
                         ids=["tiny", "tiny-causal", "default"])
def test_encoder_context_covers_the_receptive_field(config: CodecConfig) -> None:
    """Away from the signal edges, windowed latents equal latents of the whole signal."""
    torch.manual_seed(3)
    codec = Codec(config).eval()
    frames = 2 * config.encode_window_frames + 57  # three windows
    wav = 0.1 * torch.randn(1, 1, frames * codec.hop_length)
    ctx = codec.encoder_context
    # whole-signal latents with ctx frames of real zeros around it (the encoder's own padding differs)
    padded = F.pad(wav, (ctx * codec.hop_length, ctx * codec.hop_length))
    with torch.no_grad():
        whole = codec.encoder(padded)[..., ctx: ctx + frames]
    windowed = window_latents(codec, wav)
    assert windowed.shape == whole.shape
    inner = slice(ctx, frames - ctx)
    assert torch.allclose(windowed[..., inner], whole[..., inner], atol=1e-5)


def test_causal_encoder_ignores_the_future() -> None:
    torch.manual_seed(4)
    codec = Codec(CodecConfig.tiny(causal=True)).eval()
    hop, frames, cut = codec.hop_length, 30, 17
    wav = 0.1 * torch.randn(1, 1, frames * hop)
    changed = wav.clone()
    changed[..., cut * hop:] += torch.randn(1, 1, (frames - cut) * hop)
    with torch.no_grad():
        a, b = codec.encoder(wav), codec.encoder(changed)
    assert torch.equal(a[..., :cut], b[..., :cut])
    assert not torch.allclose(a[..., cut:], b[..., cut:])


def test_non_causal_encoder_looks_ahead() -> None:
    torch.manual_seed(4)
    codec = Codec(CodecConfig.tiny()).eval()
    hop, frames, cut = codec.hop_length, 30, 17
    wav = 0.1 * torch.randn(1, 1, frames * hop)
    changed = wav.clone()
    changed[..., cut * hop:] += 1.0
    with torch.no_grad():
        assert not torch.equal(codec.encoder(wav)[..., :cut], codec.encoder(changed)[..., :cut])


def test_prepare_for_inference_keeps_outputs() -> None:
    torch.manual_seed(5)
    codec = Codec(CodecConfig.tiny(decoder="conv")).eval()
    wav = 0.1 * torch.randn(1, 1, 8000)
    idx = codec.encode(wav)
    ref = codec.decode(idx)
    codec.prepare_for_inference()
    assert not any("parametrizations" in k for k in codec.state_dict())
    assert torch.allclose(codec.decode(idx), ref, atol=1e-5)


def test_latent_norm_keeps_quantizer_inputs_out_of_saturation() -> None:
    """With latent_norm, a huge encoder output (what drove the first shipped run into one corner
    code) still reaches the quantizer at unit scale per frame."""
    from fsq_audio.config import CodecConfig
    from fsq_audio.models.codec import Codec

    codec = Codec(CodecConfig.tiny(latent_norm=True))
    with torch.no_grad():
        codec.encoder.net[-1].conv.bias.fill_(40.0)  # push every latent far into tanh saturation
        z = codec.encoder(torch.randn(1, 1, 3200))
    assert torch.allclose(z.mean(dim=1), torch.zeros(1, z.shape[-1]), atol=1e-3)
    assert torch.allclose(z.std(dim=1, unbiased=False), torch.ones(1, z.shape[-1]), atol=1e-2)
