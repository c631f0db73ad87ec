"""Tests of the residual FSQ stack (fsq_audio.quantize.residual)."""

from __future__ import annotations

import pytest
import torch

from fsq_audio.quantize import ResidualFSQ


def identity_rfsq(levels: list[int], stages: int, stage_dropout: float = 0.0) -> ResidualFSQ:
    """A ResidualFSQ with dim == len(levels) and diagonal 1x1 projections that zoom stage k in by
    (L-1)^k and back out (the scales a trained model's projections learn; tests the residual mechanism)."""
    d = len(levels)
    q = ResidualFSQ(levels, stages, d, stage_dropout)
    lv = torch.tensor(levels, dtype=torch.float32)
    with torch.no_grad():
        for k in range(stages):
            q.project_in[k].weight.copy_(torch.diag((lv - 1) ** k).unsqueeze(-1))
            q.project_out[k].weight.copy_(torch.diag((lv - 1) ** -k).unsqueeze(-1))
            q.project_in[k].bias.zero_()
            q.project_out[k].bias.zero_()
    return q


def uniform_latents(dim: int, frames: int = 1000, half_range: float = 0.5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.rand(2, dim, frames, generator=g) - 1) * half_range


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8, 5, 5, 5], [3, 3]])
def test_reconstruction_error_shrinks_with_each_stage(levels: list[int]) -> None:
    q = identity_rfsq(levels, 5).eval()
    z = uniform_latents(len(levels))
    mse, worst = [], []
    for n in range(1, 6):
        with torch.no_grad():
            z_q, idx = q(z, n)
        assert idx.shape == (2, n, z.shape[-1])
        mse.append(float(((z_q - z) ** 2).mean()))
        worst.append(float((z_q - z).abs().max()))
    assert all(b < a for a, b in zip(mse, mse[1:])), mse
    assert all(b <= a + 1e-6 for a, b in zip(worst, worst[1:])), worst
    assert mse[-1] < mse[0] / 30


def test_fresh_stages_are_not_saturated() -> None:
    """Regression: a fixed (L-1)^-k input scaling saturated tanh in every later stage at
    initialisation, and training collapsed those stages to one code."""
    torch.manual_seed(0)
    q = ResidualFSQ([8, 8, 8, 5, 5, 5], 6, 64)
    z = torch.nn.functional.layer_norm(torch.randn(4, 64, 200).transpose(1, 2), (64,)).transpose(1, 2)
    with torch.no_grad():
        _, idx, aux = q(z, return_aux=True)
    for k in range(6):
        assert idx[:, k].unique().numel() > 50, k
    assert float(aux["quant/saturation"]) < 0.2  # the old scaling gave ~1e8


def test_indices_of_fewer_stages_are_a_prefix() -> None:
    torch.manual_seed(0)
    q = ResidualFSQ([8, 5, 5, 5], 4, 16).eval()
    z = torch.randn(3, 16, 25)
    z_full, idx_full = q(z)
    for n in range(1, 5):
        z_n, idx_n = q(z, n)
        assert torch.equal(idx_n, idx_full[:, :n])
        assert torch.allclose(q.decode_indices(idx_n), z_n, atol=1e-6)
    assert torch.allclose(z_n, z_full)


def test_decode_indices_rejects_too_many_stages() -> None:
    q = ResidualFSQ([3, 3], 2, 4)
    with pytest.raises(ValueError):
        q.decode_indices(torch.zeros(1, 3, 5, dtype=torch.long))
    with pytest.raises(ValueError):
        q(torch.zeros(1, 4, 5), 0)
    with pytest.raises(ValueError):
        q(torch.zeros(1, 4, 5), 3)


def prefix_decodes(q: ResidualFSQ, idx: torch.Tensor) -> torch.Tensor:
    """(S, B, dim, F): the reconstruction from the first k+1 stages of every item."""
    return torch.stack([q.decode_indices(idx[:, : k + 1]) for k in range(idx.shape[1])])


def test_stage_dropout_in_training_gives_prefixes() -> None:
    torch.manual_seed(1)
    q = ResidualFSQ([8, 5, 5, 5], 4, 16, stage_dropout=1.0).train()
    z = torch.randn(64, 16, 6)
    with torch.no_grad():
        z_q, idx = q(z)
        assert idx.shape == (64, 4, 6)  # all stages are still reported
        prefixes = prefix_decodes(q, idx)  # (S, B, dim, F)
    err = (prefixes - z_q.unsqueeze(0)).abs().amax(dim=(2, 3))  # (S, B)
    best = err.argmin(dim=0)
    assert bool((err.min(dim=0).values < 1e-5).all()), "every item must equal one of its prefix decodes"
    assert len(set(best.tolist())) >= 3, "with stage_dropout=1 the kept prefix length varies across the batch"
    # the same frames of one item share one prefix: it is chosen per item, not per frame
    assert torch.equal(z_q, prefixes[best, torch.arange(64)])


def test_no_stage_dropout_in_eval_or_at_zero_probability() -> None:
    torch.manual_seed(2)
    z = torch.randn(32, 16, 5)
    for q in (ResidualFSQ([8, 5, 5, 5], 4, 16, stage_dropout=1.0).eval(),
              ResidualFSQ([8, 5, 5, 5], 4, 16, stage_dropout=0.0).train()):
        with torch.no_grad():
            z_q, idx = q(z)
            assert torch.allclose(z_q, q.decode_indices(idx), atol=1e-6)


def test_gradients_reach_latents_and_projections() -> None:
    torch.manual_seed(3)
    q = ResidualFSQ([8, 5, 5, 5], 3, 16).train()
    z = torch.randn(2, 16, 7, requires_grad=True)
    z_q, _ = q(z)
    z_q.square().sum().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    for k in range(3):
        assert float(q.project_in[k].weight.grad.abs().sum()) > 0
        assert float(q.project_out[k].weight.grad.abs().sum()) > 0


def test_autocast_bf16_keeps_indices() -> None:
    torch.manual_seed(4)
    q = identity_rfsq([8, 5, 5, 5], 3).eval()
    z = uniform_latents(4, frames=50)
    ref = q(z)[1]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_q, idx = q(z)
    assert idx.dtype == torch.int64 and idx.shape == ref.shape
    # identity projections under bf16 round the latents first; nearly all codes agree
    assert float((idx == ref).float().mean()) > 0.9
