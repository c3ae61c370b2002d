"""The k-diffusion samplers the WebUIs list, by their WebUI names (A1111 1.10
modules/sd_samplers_kdiffusion.py `samplers_k_diffusion`), with the options the WebUI passes.
Tests, the demo and the benchmarks iterate over this one table."""

from __future__ import annotations

from typing import Callable, Dict, Tuple

# WebUI name -> (k_diffusion.sampling function name, fixed keyword options)
WEBUI_SAMPLERS: Dict[str, Tuple[str, dict]] = {
    "Euler": ("sample_euler", {}),
    "Euler a": ("sample_euler_ancestral", {}),
    "Heun": ("sample_heun", {}),
    "DPM2": ("sample_dpm_2", {}),
    "DPM2 a": ("sample_dpm_2_ancestral", {}),
    "LMS": ("sample_lms", {}),
    "DPM fast": ("sample_dpm_fast", {}),
    "DPM++ 2S a": ("sample_dpmpp_2s_ancestral", {}),
    "DPM++ SDE": ("sample_dpmpp_sde", {}),
    "DPM++ 2M": ("sample_dpmpp_2m", {}),
    "DPM++ 2M SDE": ("sample_dpmpp_2m_sde", {}),
    "DPM++ 2M SDE Heun": ("sample_dpmpp_2m_sde", {"solver_type": "heun"}),
    "DPM++ 3M SDE": ("sample_dpmpp_3m_sde", {}),
}

# Listed by the WebUIs but without a fixed schedule: wrap_sampler raises UnsupportedSampler.
UNSUPPORTED = {"DPM adaptive": "sample_dpm_adaptive"}


def sampler_function(name: str) -> Tuple[Callable, dict]:
    """The k-diffusion function and options behind a WebUI sampler name."""
    import k_diffusion.sampling as K

    func_name, options = WEBUI_SAMPLERS[name]
    return getattr(K, func_name), dict(options)


def is_fixed_range(name: str) -> bool:
    """DPM fast takes (sigma_min, sigma_max, n) instead of a sigma schedule."""
    return WEBUI_SAMPLERS[name][0] == "sample_dpm_fast"
