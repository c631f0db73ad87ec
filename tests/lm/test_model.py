"""TokenLM: symbol mapping, KV-cache consistency, stage masking, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsq_audio.errors import ConfigError
from fsq_audio.lm.config import LMConfig
from fsq_audio.lm.heads import codes_to_symbols, symbols_to_codes
from fsq_audio.lm.model import TokenLM
from fsq_audio.lm.stream import FrameStream
from fsq_audio.quantize import FSQ

from lm_helpers import LEVELS, patterned_tokens, tiny_lm_config


def _lm(seed: int = 0, **overrides) -> TokenLM:
    torch.manual_seed(seed)
    return TokenLM(tiny_lm_config("c-0", **overrides)).eval()


@pytest.mark.parametrize("factorised", [True, False])
def test_symbols_round_trip(factorised):
    cfg = tiny_lm_config("c-0", factorised=factorised)
    codes = torch.randint(0, cfg.codebook_size, (2, 2, 7))
    sym = codes_to_symbols(codes, cfg.stage_alphabets)
    assert sym.shape == (2, 7, 2 * cfg.symbols_per_stage)
    assert torch.equal(symbols_to_codes(sym, cfg.stage_alphabets), codes)
    if factorised:  # same digits as the quantizer's own level indices
        levels = FSQ(LEVELS).indices_to_level_indices(codes[:, 0])  # (B, D, F)
        assert torch.equal(sym[..., :4], levels.transpose(1, 2))


@pytest.mark.parametrize("factorised", [True, False])
def test_kv_cache_matches_full_forward(factorised):
    lm = _lm(factorised=factorised)
    codes = torch.randint(0, 1000, (2, 2, 20))
    sym = codes_to_symbols(codes, lm.config.stage_alphabets)
    full = lm.logits(sym)  # (B, T, N, Amax)
    stream = FrameStream(lm, 2)
    stream.extend(sym[:, :5])  # a prompt in one forward, then one frame at a time
    for t in range(5, 20):
        for j in range(sym.shape[-1]):
            step = lm.head.step(stream.ctx, sym[:, t, :j])
            torch.testing.assert_close(step, full[:, t, j, : step.shape[-1]], rtol=1e-4, atol=1e-4)
        if t + 1 < 20:
            stream.push(sym[:, t])
    # cached chunk after cached frames (general attention mask) agrees too
    stream2 = FrameStream(lm, 2)
    stream2.extend(sym[:, :7])
    stream2.extend(sym[:, 7:12])
    first = lm.head.step(stream2.ctx, sym[:, 12, :0])
    torch.testing.assert_close(first, full[:, 12, 0, : first.shape[-1]], rtol=1e-4, atol=1e-4)


def test_sliding_window_is_bounded():
    lm = _lm(max_frames=8)
    stream = FrameStream(lm, 1)
    for _ in range(30):
        stream.push(torch.zeros(1, 8, dtype=torch.long))
        assert stream.cache.pos <= 8 and len(stream.history) <= 8
    assert torch.isfinite(stream.h).all()


def test_stage_prefix_and_padding_masks():
    lm = _lm()
    codes = torch.randint(0, 1000, (3, 3, 10))
    nll, mask = lm(codes, lengths=torch.tensor([10, 4, 7]), n_stages=torch.tensor([2, 1, 2]))
    assert nll.shape == mask.shape == (3, 10, 8)
    assert mask[0].all() and not mask[1, 4:].any() and not mask[1, :, 4:].any() and mask[1, :4, :4].all()
    # an item's frame-0 prediction of stage 0 ignores its stage-1 symbols
    other = codes.clone()
    other[:, 1] = (other[:, 1] + 1) % 1000
    one = torch.ones(3, dtype=torch.long)
    assert torch.allclose(lm(codes, n_stages=one)[0][:, :, :4], lm(other, n_stages=one)[0][:, :, :4], atol=1e-6)


def test_config_validation():
    with pytest.raises(ConfigError, match="heads"):
        LMConfig(dim=30, heads=4).with_codec(LEVELS, 3, 50.0, "c")
    with pytest.raises(ConfigError, match="levels"):
        LMConfig().validate()  # codec fields not filled in
    assert LMConfig(num_stages=4).with_codec(LEVELS, 3, 50.0, "c").num_stages == 3
    assert LMConfig().with_codec([8, 8, 8, 5, 5, 5], 6, 50.0, "c").vocab_size == 64000


def test_loss_falls_when_overfitting():
    torch.manual_seed(0)
    lm = TokenLM(tiny_lm_config("c-0", dim=48, depth_hidden=48)).train()
    codes = torch.from_numpy(np.stack([u[:, :30] for u in patterned_tokens(4)]))
    opt = torch.optim.AdamW(lm.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        nll, mask = lm(codes)
        loss = nll[mask].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
