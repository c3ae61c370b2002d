"""Exact denoisers of isotropic Gaussian mixtures: the paper's analytic test bed (Fig. 4-5).

For p(x0) = sum_k w_k N(mu_k, s^2 I), the noisy marginal at level sigma is the same mixture
with variance s^2 + sigma^2, and the ideal denoiser is closed-form:
    D(x, sigma) = sum_k r_k(x) * (s^2 x + sigma^2 mu_k) / (s^2 + sigma^2),
with r_k the posterior responsibility of component k. No training, no downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class GaussianMixture:
    """An isotropic mixture; `means` is [K, dim], `weights` sums to 1."""

    means: torch.Tensor
    weights: torch.Tensor
    std: float

    @classmethod
    def of(cls, means: Sequence, weights: Sequence[float], std: float) -> GaussianMixture:
        m = torch.as_tensor(means, dtype=torch.float64)
        w = torch.as_tensor(weights, dtype=torch.float64)
        return cls(m.reshape(len(w), -1), w / w.sum(), float(std))

    def reweighted(self, weights: Sequence[float]) -> GaussianMixture:
        return GaussianMixture.of(self.means, weights, self.std)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, **_extra_args) -> torch.Tensor:
        """k-diffusion model convention: x [B, dim], sigma [B] (or scalar) -> E[x0 | x]."""
        return self.denoise_reweighted(x, sigma, [self.weights])[0]

    def denoise_reweighted(self, x: torch.Tensor, sigma: torch.Tensor, weight_sets) -> list:
        """The denoisers of this mixture's components under each set of weights, from one
        evaluation of what they share (distances, posterior means): the analytic counterpart
        of one batched model call serving a strong and a weak condition."""
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        var0 = self.std**2
        var = var0 + torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1) ** 2  # [B, 1]
        sq = _squared_distances(flat, self.means)  # [B, K]
        mean_post = (var0 * flat.unsqueeze(1) + (var - var0).unsqueeze(1) * self.means) / var.unsqueeze(1)
        results = []
        for weights in weight_sets:
            resp = torch.softmax(torch.as_tensor(weights).log() - 0.5 * sq / var, dim=1)
            results.append((resp.unsqueeze(2) * mean_post).sum(1).to(x.dtype).reshape(x.shape))
        return results

    def component_of(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest mean for each sample (which mode a sample landed in)."""
        return _squared_distances(x.reshape(x.shape[0], -1).to(torch.float64), self.means).argmin(1)

    def mode_masses(self, x: torch.Tensor) -> torch.Tensor:
        """Fraction of samples in each mode."""
        return torch.bincount(self.component_of(x), minlength=len(self.weights)).double() / x.shape[0]

    def sample(self, n: int, generator: torch.Generator = None) -> torch.Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.means.shape[1], dtype=torch.float64, generator=generator)
        return self.means[k] + self.std * noise


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[N, D] x [K, D] -> [N, K]; exact (torch.cdist switches to a less exact and, on a busy
    CPU with several threads, much slower matrix-product form above 25 rows)."""
    return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)


def paper_1d():
    """W2SD.md's check: peaks at -2 and +2 (std 0.3); ideal 0.5/0.5, strong 0.3/0.7, weak 0.1/0.9."""
    ideal = GaussianMixture.of([[-2.0], [2.0]], [0.5, 0.5], 0.3)
    return ideal, ideal.reweighted([0.3, 0.7]), ideal.reweighted([0.1, 0.9])


def paper_2d():
    """A 2-D test bed in the spirit of the paper's Fig. 5: five modes A-E on a ring (radius 2.5, std 0.35).

    Ideal: equal weights. Strong: biased toward A (0.40 / 0.25 / 0.15 / 0.12 / 0.08). Weak: the same bias,
    stronger, with almost no mass on E (0.60 / 0.25 / 0.10 / 0.04 / 0.01), as a model trained on even
    more skewed data; so strong - weak points from the strong model toward the ideal. (A weak weight of
    exactly 0 makes that difference unbounded near E and flings some samples past it.)"""
    angles = torch.arange(5, dtype=torch.float64) * (2 * torch.pi / 5) + torch.pi / 2
    means = 2.5 * torch.stack([angles.cos(), angles.sin()], dim=1)
    ideal = GaussianMixture.of(means, [0.2] * 5, 0.35)
    return ideal, ideal.reweighted([0.40, 0.25, 0.15, 0.12, 0.08]), ideal.reweighted([0.60, 0.25, 0.10, 0.04, 0.01])
