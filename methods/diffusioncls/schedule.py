"""The label-aware noise schedule (paper Eq. 2-3) as pure functions over torch tensors.

The probability that token i is masked at step t of T is

    p_i(t) = clip(t/T + lam * sin(pi * t/T) * w_i, 0, 1)

(the paper's ``alpha_t^i`` is the probability of still being unmasked, ``1 - p_i(t)``), where
``w_i`` is the token's importance weight (proxy [CLS] attention). Tokens that matter for the
label are masked earlier in the forward process; ``lam = 0`` gives the plain linear schedule.

Two ways to draw masks:

* ``"marginal"`` (default): one uniform draw ``u_i`` per token; token i is masked at step t
  iff ``u_i < p_i(t)``. The per-token marginal is exactly ``p_i(t)`` and, because ``p_i`` is
  non-decreasing in t on [0, T], masks are nested across t (masked at t => masked at t' > t).
* ``"cumulative"`` (the reference code's behaviour): a fresh Bernoulli(p_i(s)) at every step
  s = 1..t, OR-ed into the previous mask. Masks are nested too, but far more tokens are
  masked than the marginal says (about 94% at t = 12 of 32 against 37.5%).

Positions where ``maskable`` is false (padding, [CLS], [SEP], the label prompt) are never
masked, whatever their weight.
"""

from __future__ import annotations

import math

SCHEDULES = ("marginal", "cumulative")


def mask_prob(t, T: int, w, lam: float = 0.5, maskable=None):
    """``p_i(t)`` for weights ``w`` (any shape); ``t`` a number or a tensor broadcastable to ``w``.

    Non-maskable positions get probability 0.
    """
    import torch

    w = torch.as_tensor(w, dtype=torch.float32)
    t = torch.as_tensor(t, dtype=torch.float32)
    frac = t / float(T)
    p = (frac + float(lam) * torch.sin(math.pi * frac) * w).clamp(0.0, 1.0)
    if maskable is not None:
        p = p * torch.as_tensor(maskable).to(p.dtype)
    return p


def unmasked_prob(t, T: int, w, lam: float = 0.5, maskable=None):
    """The paper's ``alpha_t^i``: the probability that token i is still unmasked at step t."""
    return 1.0 - mask_prob(t, T, w, lam, maskable)


def marginal_mask(u, t, T: int, w, lam: float = 0.5, maskable=None):
    """Masked iff ``u_i < p_i(t)``: one uniform draw per token gives masks nested across t."""
    import torch

    return torch.as_tensor(u) < mask_prob(t, T, w, lam, maskable)


def cumulative_mask(t, T: int, w, lam: float = 0.5, maskable=None, generator=None):
    """Reference-code variant: OR of independent Bernoulli(p_i(s)) draws for s = 1..t.

    ``t`` may be an int or a tensor of per-row steps (shape ``w.shape[:-1]``).
    """
    import torch

    w = torch.as_tensor(w, dtype=torch.float32)
    t = torch.as_tensor(t)
    t_rows = t.expand(w.shape[:-1]) if t.dim() == 0 else t
    mask = torch.zeros(w.shape, dtype=torch.bool)
    t_max = int(t_rows.max()) if t_rows.numel() else 0
    for s in range(1, t_max + 1):
        p = mask_prob(s, T, w, lam, maskable)
        draw = torch.rand(w.shape, generator=generator) < p
        active = (t_rows >= s).unsqueeze(-1)
        mask |= draw & active
    return mask


def expected_mask_rate(t, T: int, w, lam: float = 0.5, maskable=None, schedule: str = "marginal"):
    """Expected fraction of maskable tokens masked at step t (closed form for both schedules)."""
    import torch

    w = torch.as_tensor(w, dtype=torch.float32)
    m = torch.ones_like(w, dtype=torch.bool) if maskable is None else torch.as_tensor(maskable).bool()
    if schedule == "marginal":
        p = mask_prob(t, T, w, lam, m)
    elif schedule == "cumulative":
        keep = torch.ones_like(w)
        for s in range(1, int(t) + 1):
            keep = keep * (1 - mask_prob(s, T, w, lam, m))
        p = (1 - keep) * m
    else:
        raise ValueError(f"unknown schedule {schedule!r}; known {SCHEDULES}")
    return float(p[m].mean()) if m.any() else 0.0


def draw_mask(schedule: str, t, T: int, w, lam: float, maskable, u=None, generator=None):
    """One mask per row for per-row steps ``t``. ``u`` (uniforms, shape of ``w``) is used by
    ``marginal`` and drawn from ``generator`` when not given."""
    import torch

    w = torch.as_tensor(w, dtype=torch.float32)
    t = torch.as_tensor(t, dtype=torch.float32)
    if t.dim() == 1:
        t = t.unsqueeze(-1)
    if schedule == "marginal":
        if u is None:
            u = torch.rand(w.shape, generator=generator)
        return marginal_mask(u, t, T, w, lam, maskable)
    if schedule == "cumulative":
        return cumulative_mask(t.squeeze(-1).long() if t.dim() > 1 else t.long(), T, w, lam, maskable, generator)
    raise ValueError(f"unknown schedule {schedule!r}; known {SCHEDULES}")


def step_group_steps(step_group: int, T: int = 32, n_groups: int = 8) -> list[int]:
    """The steps of 1-based group ``step_group`` when T steps are split into ``n_groups`` groups.

    With T = 32 and 8 groups, group 4 is steps 13, 14, 15, 16.
    """
    if T % n_groups:
        raise ValueError(f"T={T} is not divisible into {n_groups} groups")
    if not 1 <= step_group <= n_groups:
        raise ValueError(f"step_group must be in 1..{n_groups}, got {step_group}")
    size = T // n_groups
    return list(range((step_group - 1) * size + 1, step_group * size + 1))
