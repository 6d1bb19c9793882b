"""The label-aware noise schedule (DiffusionCLS Eq. 2-3): pure functions, no model."""

from __future__ import annotations

import math

import pytest
import torch

from methods.diffusioncls.schedule import (
    cumulative_mask,
    draw_mask,
    expected_mask_rate,
    marginal_mask,
    mask_prob,
    step_group_steps,
    unmasked_prob,
)

T = 32


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_mask_prob_is_monotone_in_t_and_ends_at_one(lam):
    w = torch.linspace(0, 1, 11)
    ps = torch.stack([mask_prob(t, T, w, lam) for t in range(T + 1)])
    assert torch.all(ps[1:] >= ps[:-1] - 1e-7)
    assert torch.allclose(ps[0], torch.zeros(11))
    assert torch.allclose(ps[-1], torch.ones(11))
    assert torch.all((ps >= 0) & (ps <= 1))


def test_higher_weight_is_masked_earlier():
    w = torch.tensor([0.05, 0.2, 0.6])
    for t in range(1, T):
        p = mask_prob(t, T, w, 0.5)
        assert p[0] <= p[1] <= p[2]
    # with a shared uniform draw, the heavier token is masked at an earlier (or the same) step
    u = torch.full((3,), 0.3)
    first = [min(t for t in range(1, T + 1) if marginal_mask(u, t, T, w, 0.5)[i]) for i in range(3)]
    assert first[2] < first[0]
    assert first == sorted(first, reverse=True)


def test_lambda_zero_is_linear_and_paper_value():
    w = torch.tensor([0.0, 0.3, 1.0])
    for t in range(T + 1):
        assert torch.allclose(mask_prob(t, T, w, 0.0), torch.full((3,), t / T))
    # hand value: t=8, lam=.5, w=.3: 8/32 + .5*sin(pi/4)*.3
    assert mask_prob(8, T, torch.tensor([0.3]), 0.5).item() == pytest.approx(0.25 + 0.5 * math.sin(math.pi / 4) * 0.3)
    assert unmasked_prob(8, T, torch.tensor([0.0]), 0.5).item() == pytest.approx(0.75)


def test_prefix_and_padding_are_never_masked():
    w = torch.tensor([[0.9, 0.9, 0.9, 0.1, 0.2, 0.0, 0.0]])
    maskable = torch.tensor([[False, False, False, True, True, False, False]])
    for t in (1, 16, 32):
        assert mask_prob(t, T, w, 0.5, maskable)[~maskable].eq(0).all()
        m = marginal_mask(torch.zeros_like(w), t, T, w, 0.5, maskable)
        assert not m[~maskable].any()
        g = torch.Generator().manual_seed(0)
        assert not cumulative_mask(t, T, w, 0.5, maskable, generator=g)[~maskable].any()
    m = draw_mask("marginal", torch.tensor([32]), T, w, 0.5, maskable, generator=torch.Generator().manual_seed(1))
    assert m.tolist() == maskable.tolist()  # t = T masks every maskable token and nothing else


def test_marginal_masks_are_nested_and_have_the_closed_form_rate():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(4000, generator=g) * 0.2
    u = torch.rand(4000, generator=g)
    prev = torch.zeros(4000, dtype=torch.bool)
    for t in range(1, T + 1):
        m = marginal_mask(u, t, T, w, 0.5)
        assert torch.all(m | ~prev)  # masked before => masked now
        prev = m
    m12 = marginal_mask(u, 12, T, torch.zeros(4000), 0.5)
    assert m12.float().mean().item() == pytest.approx(12 / 32, abs=0.025)


def test_cumulative_reference_variant_masks_far_more():
    z = torch.zeros(1)
    assert expected_mask_rate(12, T, z, 0.5, schedule="marginal") == pytest.approx(0.375)
    rate = expected_mask_rate(12, T, z, 0.5, schedule="cumulative")
    assert rate == pytest.approx(1 - math.prod(1 - s / 32 for s in range(1, 13)))
    assert 0.93 < rate < 0.95
    g = torch.Generator().manual_seed(0)
    m = cumulative_mask(12, T, torch.zeros(1, 5000), 0.5, generator=g)
    assert m.float().mean().item() == pytest.approx(rate, abs=0.02)
    # same seed => nested chain across t
    a = cumulative_mask(5, T, torch.zeros(1, 500), 0.5, generator=torch.Generator().manual_seed(3))
    b = cumulative_mask(9, T, torch.zeros(1, 500), 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.all(b | ~a)


def test_step_groups():
    assert step_group_steps(4) == [13, 14, 15, 16]
    assert step_group_steps(1) == [1, 2, 3, 4]
    assert step_group_steps(8) == [29, 30, 31, 32]
    with pytest.raises(ValueError):
        step_group_steps(9)
    with pytest.raises(ValueError):
        step_group_steps(1, T=30, n_groups=8)
