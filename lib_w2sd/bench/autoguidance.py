"""Autoguidance (Karras et al., "Guiding a Diffusion Model with a Bad Version of Itself", NeurIPS 2024).

The baseline W2SD is measured against: the sampled denoiser is the strong model extrapolated away
from a weak version of itself,

    D(x, sigma) = D_w(x, sigma) + w (D_s(x, sigma) - D_w(x, sigma)),

computed as NVlabs/edm2's generate_images.py does (`ref_Dx.lerp(Dx, guidance)`, the guiding network
not called at all when w == 1). It is a plain denoiser, so every k-diffusion sampler runs it
unchanged: one weak call per evaluation, no inversion, no restart of a multistep sampler.

How it relates to W2SD. A reflection ('start', strength s) moves x by s (1 - sigma'/sigma)(D_s - D_w)(x)
before the step; an autoguided Euler step is the strong model's Euler step plus
(w - 1)(1 - sigma'/sigma)(D_s - D_w)(x). Both push along the same weak-to-strong difference, so
to first order a strength s is a guidance weight w of about 1 + s (less where the step after the
reflection shrinks the displacement). W2SD pays a strong and a weak call
per reflected step for its push; autoguidance pays one weak call per evaluation.
"""

import math

import torch

from ..errors import InvalidOption


class Autoguided:
    """The denoiser D_w + w (D_s - D_w) of a strong and a weak denoiser (k-diffusion convention)."""

    def __init__(self, strong, weak, guidance: float):
        if not (isinstance(guidance, (int, float)) and math.isfinite(guidance)):
            raise InvalidOption(f"autoguidance 'guidance' must be a finite number (1: the strong model "
                                f"alone); got {guidance!r}")
        self.strong, self.weak, self.guidance = strong, weak, float(guidance)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **extra_args) -> torch.Tensor:
        d_strong = self.strong(x, sigma, **extra_args)
        if self.guidance == 1:
            return d_strong
        # lerp(d_w, d_s, w) = d_w + w (d_s - d_w); equal models give d_s back bit for bit
        return torch.lerp(self.weak(x, sigma, **extra_args), d_strong, self.guidance)
