"""Stand-in for modules/sd_samplers_lcm.py (A1111 v1.10.1, 82a973c0): LCMSampler, a
KDiffusionSampler whose function has k-diffusion's signature but LCM's own maths (the real one
also swaps in an LCM denoiser); W2SD runs it plain."""

import k_diffusion.sampling
import torch

from modules import sd_samplers_common, sd_samplers_kdiffusion


@torch.no_grad()
def sample_lcm(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    noise_sampler = k_diffusion.sampling.default_noise_sampler(x) if noise_sampler is None else noise_sampler
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        x = denoised + sigmas[i + 1] * noise_sampler(sigmas[i], sigmas[i + 1]) if sigmas[i + 1] > 0 else denoised
    return x


class LCMSampler(sd_samplers_kdiffusion.KDiffusionSampler):
    pass


samplers_lcm = [("LCM", sample_lcm, ["k_lcm"], {})]
samplers_data_lcm = [
    sd_samplers_common.SamplerData(label, lambda model, funcname=funcname: LCMSampler(funcname, model), aliases, options)
    for label, funcname, aliases, options in samplers_lcm
]
