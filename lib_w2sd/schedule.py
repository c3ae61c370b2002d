"""Which steps of a schedule are reflected, and how the schedule is cut into sampler calls."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch


def reflected_steps(
    sigmas: torch.Tensor,
    reflect_steps: Optional[int] = None,
    sigma_window: Optional[Tuple[float, float]] = None,
) -> List[int]:
    """Indices i of the steps sigma_i -> sigma_{i+1} to reflect.

    Only real downward steps to a positive level qualify: the inversion back from sigma 0 is
    undefined at the exact level, and the official code never reflects the final step.
    `reflect_steps=None` (and no window) means every step but the last, as in the paper; an
    integer N means the first N eligible steps (all of them when N is larger);
    `sigma_window=(lo, hi)` means the eligible steps with lo <= sigma_i <= hi."""
    levels = [float(s) for s in sigmas]
    n = len(levels) - 1
    eligible = [i for i in range(n) if levels[i + 1] > 0 and levels[i] > levels[i + 1]]
    if sigma_window is not None:
        lo, hi = sigma_window
        chosen = [i for i in eligible if lo <= levels[i] <= hi]
        return chosen if reflect_steps is None else chosen[:reflect_steps]
    if reflect_steps is None:
        return [i for i in eligible if i < n - 1]
    return eligible[:reflect_steps]


def segments(n_steps: int, reflected: Sequence[int]) -> List[Tuple[int, int]]:
    """Cut steps 0..n_steps-1 into [start, end) runs that each begin at a reflected step (or 0).

    Every reflected step starts a new sampler call because the reflection has moved the
    latent off the trajectory a multistep sampler's history describes. The run after the last
    reflected step goes to the end in one call, so the sampler keeps its full history there
    and the schedule's final step is never a call of its own (k-diffusion 0.1.1's
    DPM++ 2M SDE, for one, fails on a one-step schedule ending at 0)."""
    starts = sorted(set(reflected) | {0})
    ends = starts[1:] + [n_steps]
    return list(zip(starts, ends))
