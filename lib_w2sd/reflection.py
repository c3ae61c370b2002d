"""The W2SD reflection in sigma space (paper Sec. 3, k-diffusion convention D(x, sigma) -> x0).

One reflection at step i, from sigma to sigma_next (> 0):

    x_down = x      + (sigma_next - sigma) * (x - D_s(x, sigma)) / sigma          # strong denoise
    x_up   = x_down + (sigma - sigma_next) * (y - D_w(y, s_w))   / s_w            # weak inversion

To first order x_up - x = (sigma - sigma_next) * (D_s - D_w) / sigma: the latent moves along
the weak-to-strong difference, which stands in for the unknown strong-to-ideal gap.

Where the weak model looks (`weak_sigma`):
  'start'    y = x,      s_w = sigma       the point the inversion returns to: the exact inverse
                                           step with the weak model read at its landing point,
                                           which the reflection approximates by where it began.
                                           Weak == strong is then an exact identity, both models
                                           see the same input, and their gap is measured for free.
  'next'     y = x_down, s_w = sigma_next  the latent's own exact level (plain DDIM inversion).
  'current'  y = x_down, s_w = sigma       the official code: the higher level on the lower-noise latent.

With 'start' both models read the same (x, sigma), so a `joint` denoiser J(x, sigma, **extra_args)
-> (D_s, D_w) can answer both at once (one batched model call when strong and weak share their
weights and differ only in their condition); 'next'/'current' always make two calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch

Denoiser = Callable[..., torch.Tensor]
JointDenoiser = Callable[..., Tuple[torch.Tensor, torch.Tensor]]  # J(x, sigma, **extra_args) -> (D_s, D_w)

WEAK_SIGMAS = ("start", "next", "current")


@dataclass
class ReflectionOutcome:
    """What one reflection produced, for the run's report."""

    x: torch.Tensor
    gap: Optional[torch.Tensor] = None  # RMS(D_s - D_w) / sigma where both models saw the same input
    strong_calls: int = 1
    joint: bool = False  # both estimates came from one joint call


def reflect(
    x: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    strong: Denoiser,
    weak: Denoiser,
    extra_args: dict,
    *,
    weak_sigma: str = "start",
    strength: float = 1.0,
    probe_gap: bool = False,
    joint: Optional[JointDenoiser] = None,
) -> ReflectionOutcome:
    """Strong denoise sigma -> sigma_next, weak inversion back to sigma, scaled by `strength`.

    The gap is measured where both models see the same input: always with 'start'; with
    'next'/'current' only when `probe_gap` asks for one extra strong call at the weak's input.
    `joint`, used with 'start' only, replaces the separate strong and weak calls."""
    s, s_next = float(sigma), float(sigma_next)
    s_in = x.new_ones([x.shape[0]])
    if weak_sigma == "start":
        # Both models read at (x, sigma): the two steps sum to x + (1 - s_next/s) (D_s - D_w),
        # computed in that form so that equal denoisers give back x bit for bit.
        if joint is not None:
            d_strong, d_weak = joint(x, s * s_in, **extra_args)
        else:
            d_strong, d_weak = strong(x, s * s_in, **extra_args), weak(x, s * s_in, **extra_args)
        difference = d_strong - d_weak
        x_up = x + (strength * (s - s_next) / s) * difference
        return ReflectionOutcome(x_up, _rms(difference) / s, 1, joint=joint is not None)
    d_strong = strong(x, s * s_in, **extra_args)
    x_down = torch.lerp(d_strong, x, s_next / s)  # x + (s_next - s) / s * (x - d_strong)
    s_w = s_next if weak_sigma == "next" else s
    d_weak = weak(x_down, s_w * s_in, **extra_args)
    x_up = x_down + (s - s_next) / s_w * (x_down - d_weak)
    gap, strong_calls = None, 1
    if probe_gap:
        gap, strong_calls = _rms(strong(x_down, s_w * s_in, **extra_args) - d_weak) / s_w, 2
    if strength != 1.0:
        # strength scales the displacement, so 0 is the identity and 1 the paper's reflection
        x_up = torch.lerp(x, x_up, strength)
    return ReflectionOutcome(x_up, gap, strong_calls)


def _rms(t: torch.Tensor) -> torch.Tensor:
    """Root mean square as a 0-d tensor, at least float32 (left on the device; see W2SDReport)."""
    dtype = torch.promote_types(t.dtype, torch.float32)
    return torch.linalg.vector_norm(t, dtype=dtype) / t.numel() ** 0.5
