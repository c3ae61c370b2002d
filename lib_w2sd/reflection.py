"""The W2SD reflection in sigma space (paper Sec. 3, k-diffusion convention D(x, sigma) -> x0).

One reflection at step i, from sigma to sigma_next (> 0):

    x_down = x      + (sigma_next - sigma) * (x      - D_s(x, sigma))    / sigma    # strong denoise
    x_up   = x_down + (sigma - sigma_next) * (x_down - D_w(x_down, s_w)) / s_w      # weak inversion

To first order x_up - x = (sigma - sigma_next) * (D_s - D_w) / sigma: the latent moves along
the weak-to-strong difference, which stands in for the unknown strong-to-ideal gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

Denoiser = Callable[..., torch.Tensor]

WEAK_SIGMAS = ("current", "next")


@dataclass
class ReflectionOutcome:
    """What one reflection produced, for the run's report."""

    x: torch.Tensor
    gap: Optional[float] = None  # RMS(D_s - D_w) / s_w at the weak call's point, if probed


def weak_sigma_for(sigma: torch.Tensor, sigma_next: torch.Tensor, weak_sigma: str) -> torch.Tensor:
    """The noise level the weak model is told during the inversion.

    'current' is what DDIM inversion and the official code do (the higher level's timestep on
    the lower-noise latent); 'next' is the latent's exact level."""
    return sigma if weak_sigma == "current" else sigma_next


def reflect(
    x: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    strong: Denoiser,
    weak: Denoiser,
    extra_args: dict,
    *,
    weak_sigma: str = "next",
    strength: float = 1.0,
    probe_gap: bool = False,
) -> ReflectionOutcome:
    """Strong denoise sigma -> sigma_next, weak inversion back to sigma, scaled by `strength`.

    With `probe_gap`, the strong model is also evaluated at the weak call's own point, so the
    weak-to-strong difference is measured where both models see the same input (one extra
    strong call)."""
    s_in = x.new_ones([x.shape[0]])
    d_strong = strong(x, sigma * s_in, **extra_args)
    x_down = x + (sigma_next - sigma) / sigma * (x - d_strong)
    s_w = weak_sigma_for(sigma, sigma_next, weak_sigma)
    d_weak = weak(x_down, s_w * s_in, **extra_args)
    x_up = x_down + (sigma - sigma_next) / s_w * (x_down - d_weak)
    gap = None
    if probe_gap:
        d_strong_here = strong(x_down, s_w * s_in, **extra_args)
        gap = float((d_strong_here - d_weak).float().pow(2).mean().sqrt() / s_w)
    if strength != 1.0:
        # strength scales the displacement, so 0 is the identity and 1 the paper's reflection
        x_up = torch.lerp(x, x_up, strength)
    return ReflectionOutcome(x_up, gap)
