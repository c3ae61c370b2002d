"""Small trained models: an EDM-preconditioned diffusion denoiser and a digit classifier.

The denoiser follows Karras et al. 2022 (EDM): D(x, sigma) = c_skip x + c_out F(c_in x, c_noise),
so it is a k-diffusion "model" (x, sigma[batch]) -> x0 estimate and the real k-diffusion samplers
and Karras sigma schedules drive it unchanged.
"""

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import data


@dataclass(frozen=True)
class TrainSpec:
    """How a denoiser is built and trained; part of its cache key."""

    width: int = 256
    depth: int = 3
    steps: int = 4000
    batch: int = 256
    lr: float = 2e-3
    ema: float = 0.999
    p_mean: float = -1.0  # log-normal training sigmas (EDM): log sigma ~ N(p_mean, p_std^2)
    p_std: float = 1.4


class SigmaEmbedding(nn.Module):
    """Fixed Fourier features of c_noise = log(sigma) / 4."""

    def __init__(self, dim: int = 32):
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * 4.0)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        arg = 2 * math.pi * c_noise[:, None] * self.freqs[None]
        return torch.cat([arg.cos(), arg.sin()], dim=1)


class ResidualBlock(nn.Module):
    """Pre-norm MLP block whose hidden state is shifted by the noise-level embedding."""

    def __init__(self, width: int, emb_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.emb = nn.Linear(emb_dim, width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        z = nn.functional.silu(self.fc1(self.norm(h)) + self.emb(emb))
        return h + self.fc2(z)


class DenoiserNet(nn.Module):
    """F(c_in x, c_noise): an MLP on the 64 pixels conditioned on log-sigma."""

    def __init__(self, dim: int = 64, width: int = 256, depth: int = 3, emb_dim: int = 32):
        super().__init__()
        self.embed = SigmaEmbedding(emb_dim)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(ResidualBlock(width, emb_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        emb = self.embed(c_noise)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)


class EDMDenoiser(nn.Module):
    """k-diffusion denoiser D(x, sigma) with EDM preconditioning around a DenoiserNet."""

    def __init__(self, net: DenoiserNet, sigma_data: float):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data

    def scalings(self, sigma: torch.Tensor):
        """c_skip, c_out, c_in for a [batch] of sigmas, shaped to broadcast over pixels."""
        sd2, s2 = self.sigma_data ** 2, sigma[:, None] ** 2
        c_skip = sd2 / (s2 + sd2)
        c_out = sigma[:, None] * self.sigma_data / (s2 + sd2).sqrt()
        c_in = 1 / (s2 + sd2).sqrt()
        return c_skip, c_out, c_in

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, **_extra) -> torch.Tensor:
        c_skip, c_out, c_in = self.scalings(sigma)
        return c_skip * x + c_out * self.net(c_in * x, sigma.log() / 4)

    def loss(self, x0: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """EDM's weighted denoising loss; the weight makes every noise level count alike."""
        noised = x0 + torch.randn_like(x0) * sigma[:, None]
        weight = (sigma ** 2 + self.sigma_data ** 2) / (sigma * self.sigma_data) ** 2
        return (weight[:, None] * (self(noised, sigma) - x0) ** 2).mean()


def train_denoiser(x: torch.Tensor, y: torch.Tensor, mix: np.ndarray, sigma_data: float,
                   spec: TrainSpec, seed: int, init: "EDMDenoiser | None" = None):
    """Train a denoiser on images (x, y) drawn with class mix `mix`.

    With `init`, fine-tune a copy of that model instead of starting from scratch (its
    architecture wins over spec.width / spec.depth). Returns the EMA copy of the model
    (the one to sample from) and the per-step losses.
    """
    with torch.enable_grad():  # callers may sit inside torch.no_grad()
        return _train_denoiser(x, y, mix, sigma_data, spec, seed, init)


def _train_denoiser(x, y, mix, sigma_data, spec, seed, init):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    if init is None:
        model = EDMDenoiser(DenoiserNet(x.shape[1], spec.width, spec.depth), sigma_data)
    else:
        model = copy.deepcopy(init).train().requires_grad_(True)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr, foreach=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec.lr, total_steps=spec.steps,
                                                pct_start=0.05)
    batches = data.weighted_batches(x, y, mix, spec.batch, gen)
    ema_params, model_params = list(ema.parameters()), list(model.parameters())
    losses = []
    for _ in range(spec.steps):
        x0 = next(batches)
        sigma = (torch.randn(len(x0)) * spec.p_std + spec.p_mean).exp()
        loss = model.loss(x0, sigma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, model_params, 1 - spec.ema)  # all tensors at once
        losses.append(loss.item())
    return ema.eval(), losses


class Classifier(nn.Module):
    """Digit classifier whose penultimate layer is the feature space of FD and precision/recall."""

    def __init__(self, dim: int = 64, hidden: int = 128, features: int = 32):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(),
                                  nn.Linear(hidden, features), nn.SiLU())
        self.head = nn.Linear(features, data.N_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_classifier(x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int = 60,
                     noise: float = 0.1) -> Classifier:
    """Train on the real training half; light input noise keeps it calm on imperfect samples."""
    with torch.enable_grad():  # callers may sit inside torch.no_grad()
        return _train_classifier(x, y, seed, epochs, noise)


def _train_classifier(x, y, seed, epochs, noise):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    clf = Classifier(x.shape[1])
    opt = torch.optim.Adam(clf.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            xb = x[idx] + noise * torch.randn(len(idx), x.shape[1], generator=gen)
            loss = nn.functional.cross_entropy(clf(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf.eval().requires_grad_(False)
