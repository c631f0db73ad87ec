"""Property tests of the finite scalar quantizer (fsq_audio.quantize.fsq)."""

from __future__ import annotations

import math

import pytest
import torch

from fsq_audio.quantize.fsq import FSQ, code_usage


def level_set(levels: int) -> torch.Tensor:
    """The normalised codes one dimension with `levels` levels may take.

    Odd L: symmetric around 0, e.g. L=5 -> {-1, -0.5, 0, 0.5, 1}. Even L: a half-step offset,
    e.g. L=8 -> {-4, ..., 3} / 4, so 0 is still a code.
    """
    half = levels // 2
    return torch.arange(-half, levels - half, dtype=torch.float32) / half


def sweep(fsq: FSQ, lo: float = -20.0, hi: float = 20.0, n: int = 20001) -> torch.Tensor:
    """FSQ outputs for a dense sweep of the same latent value on every dimension: (D, n)."""
    z = torch.linspace(lo, hi, n).expand(fsq.dim, n).unsqueeze(0)
    return fsq(z)[0]


@pytest.mark.parametrize("levels", list(range(2, 17)))
def test_level_set_of_each_l(levels: int) -> None:
    codes = sweep(FSQ([levels]))[0]
    assert torch.equal(torch.unique(codes), level_set(levels))


def test_level_sets_examples() -> None:
    assert level_set(8).tolist() == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]
    assert level_set(5).tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    fsq = FSQ([8, 5, 7, 6])
    codes = sweep(fsq)
    for d, lv in enumerate(fsq.levels_list):
        assert torch.equal(torch.unique(codes[d]), level_set(lv))


def test_outputs_monotone_in_latent() -> None:
    codes = sweep(FSQ([8, 5, 2, 9]))
    assert bool((codes.diff(dim=1) >= 0).all())


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8, 5, 5, 5]])
def test_index_code_bijection_over_whole_codebook(levels: list[int]) -> None:
    fsq = FSQ(levels)
    n = math.prod(levels)
    assert fsq.codebook_size == n
    indices = torch.arange(n).view(1, n)
    codes = fsq.indices_to_codes(indices)  # (1, D, n)
    assert codes.dtype == torch.float32 and codes.shape == (1, len(levels), n)
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    # every code is in its level set, and all n code vectors are distinct
    for d, lv in enumerate(levels):
        assert bool(torch.isin(codes[0, d], level_set(lv)).all())
    assert torch.unique(codes[0].T, dim=0).shape[0] == n
    # the other direction: every element of the product of level sets maps to a distinct index
    grid = torch.cartesian_prod(*[level_set(lv) for lv in levels]).T.unsqueeze(0)  # (1, D, n)
    idx = fsq.codes_to_indices(grid)
    assert torch.equal(idx.sort(dim=-1).values, indices)
    assert torch.equal(fsq.indices_to_codes(idx), grid)


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8, 5, 5, 5], [2, 3, 4]])
def test_quantize_returns_consistent_indices(levels: list[int]) -> None:
    fsq = FSQ(levels)
    z = 3 * torch.randn(4, len(levels), 50, generator=torch.Generator().manual_seed(0))
    codes, indices = fsq.quantize(z)
    assert indices.shape == (4, 50) and indices.dtype == torch.int64
    assert int(indices.min()) >= 0 and int(indices.max()) < fsq.codebook_size
    assert torch.equal(fsq.indices_to_codes(indices), codes)
    # codes are fixed points of index <-> code conversion and of quantizing a level's centre
    assert torch.equal(fsq.codes_to_indices(codes), indices)


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 8, 8, 5, 5, 5], [2, 3, 4, 7]])
def test_zero_latent_is_centre_code(levels: list[int]) -> None:
    fsq = FSQ(levels)
    codes, idx = fsq.quantize(torch.zeros(2, len(levels), 3))
    assert torch.equal(codes, torch.zeros_like(codes))
    centre = sum((lv // 2) * math.prod(levels[:d]) for d, lv in enumerate(levels))
    assert bool((idx == centre).all())
    # and the bound itself maps 0 to exactly 0 on every dimension (even L included)
    assert torch.allclose(fsq.bound(torch.zeros(1, len(levels), 1)), torch.zeros(1, len(levels), 1), atol=1e-6)


def test_straight_through_gradient_is_bound_derivative() -> None:
    levels = [8, 5, 2, 7]
    fsq = FSQ(levels)
    z = (2 * torch.randn(3, len(levels), 40, generator=torch.Generator().manual_seed(1))).requires_grad_()
    fsq(z).sum().backward()
    # analytic derivative of bound(z) / half_width, with bound = tanh(z + shift) * half_l - offset
    lv = torch.tensor(levels, dtype=torch.float32).view(1, -1, 1)
    half_l = (lv - 1) * (1 + fsq.eps) / 2
    offset = torch.where(lv % 2 == 0, 0.5, 0.0)
    shift = torch.atanh(offset / half_l)
    expected = half_l * (1 - torch.tanh(z.detach() + shift) ** 2) / (lv // 2)
    assert torch.allclose(z.grad, expected, rtol=1e-5, atol=1e-7)
    assert bool((z.grad > 0).all())  # rounding never blocks the gradient


def test_round_is_not_differentiated() -> None:
    fsq = FSQ([5])
    z = torch.tensor([[[0.1, 0.3]]], requires_grad=True)
    bound = fsq.bound(z)
    (bound.sum() / 2).backward()
    g_bound = z.grad.clone()
    z.grad = None
    fsq(z).sum().backward()
    assert torch.allclose(z.grad, g_bound)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_is_quantized_in_fp32(dtype: torch.dtype) -> None:
    fsq = FSQ([8, 8, 8, 5, 5, 5])
    z = (3 * torch.randn(2, 6, 200, generator=torch.Generator().manual_seed(2))).to(dtype)
    out = fsq(z)
    assert out.dtype == torch.float32
    assert torch.equal(out, fsq(z.float()))
    codes, idx = fsq.quantize(z)
    assert torch.equal(idx, fsq.quantize(z.float())[1])


def test_autocast_bf16_quantizes_in_fp32() -> None:
    fsq = FSQ([8, 5, 5, 5])
    proj = torch.nn.Linear(4, 4)
    x = torch.randn(2, 30, 4, generator=torch.Generator().manual_seed(3))
    reference = fsq(x.transpose(1, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = fsq(x.transpose(1, 2))
        h = proj(x).transpose(1, 2)  # bf16 under autocast
        out = fsq(h)
    assert h.dtype == torch.bfloat16
    assert inside.dtype == torch.float32 and torch.equal(inside, reference)
    assert out.dtype == torch.float32
    assert torch.equal(out, fsq(h.float()))


def test_code_usage_statistics() -> None:
    stats = code_usage(torch.tensor([0, 0, 1, 1]), 4)
    assert stats["used_fraction"] == pytest.approx(0.5)
    assert stats["perplexity"] == pytest.approx(2.0)
    assert stats["entropy_bits"] == pytest.approx(1.0)
    uniform = code_usage(torch.arange(1000).repeat(3).view(3, 1000), 1000)
    assert uniform["used_fraction"] == pytest.approx(1.0)
    assert uniform["perplexity"] == pytest.approx(1000.0)
    assert uniform["entropy_bits"] == pytest.approx(math.log2(1000))
    skewed = code_usage(torch.tensor([3] * 9 + [7]), 16)
    p = torch.tensor([0.9, 0.1])
    assert skewed["entropy_bits"] == pytest.approx(float(-(p * p.log2()).sum()))
    assert skewed["used_fraction"] == pytest.approx(2 / 16)
    assert code_usage(torch.zeros(0, dtype=torch.long), 8) == {"used_fraction": 0.0, "perplexity": 0.0,
                                                                 "entropy_bits": 0.0}


def test_invalid_levels_are_refused() -> None:
    with pytest.raises(ValueError):
        FSQ([])
    with pytest.raises(ValueError):
        FSQ([8, 1])


def test_regularizers_flag_collapse_and_saturation() -> None:
    q = FSQ([8, 5, 5, 5])
    spread = torch.linspace(-1.2, 1.2, 4000).repeat(1, 4, 1)  # every level used
    usage, saturation = q.regularizers(spread)
    assert float(usage) < 0.1 and float(saturation) == 0.0
    stuck = torch.full((2, 4, 100), 4.0, requires_grad=True)  # one corner code, deep in tanh's tail
    usage, saturation = q.regularizers(stuck)
    assert float(usage.detach()) > 0.85 and float(saturation.detach()) > 1.0
    (usage + saturation).backward()
    assert float(stuck.grad.min()) > 0  # the saturation penalty still pulls every value back


@pytest.mark.parametrize("levels", [[8, 8, 8, 5, 5, 5], [2] * 33])  # int32 fast path and int64 fallback
def test_indices_round_trip_on_both_index_paths(levels: list[int]) -> None:
    q = FSQ(levels)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, q.codebook_size, (3, 500), generator=g, dtype=torch.int64)
    codes = q.indices_to_codes(idx)
    for b, f in [(0, 0), (1, 7), (2, 499)]:  # against plain integer arithmetic
        rest, want = int(idx[b, f]), []
        for n in levels:
            want.append((rest % n - n // 2) / (n // 2))
            rest //= n
        assert codes[b, :, f].tolist() == want
    assert torch.equal(q.codes_to_indices(codes), idx)
