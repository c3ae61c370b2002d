"""W2SD: Weak-to-Strong Diffusion with Reflection (arXiv 2502.00473) for k-diffusion samplers.

The engine is WebUI-free: `wrap_sampler` runs any k-diffusion-style sampler with reflections.
Only `lib_w2sd.webui` touches the WebUIs' `modules`.
"""

from .errors import InvalidOption, UnsupportedSampler, W2SDError
from .params import ParamsError, W2SDParams
from .sampler import W2SDReport, wrap_sampler

__all__ = [
    "wrap_sampler", "W2SDReport", "W2SDParams",
    "W2SDError", "UnsupportedSampler", "InvalidOption", "ParamsError",
]
