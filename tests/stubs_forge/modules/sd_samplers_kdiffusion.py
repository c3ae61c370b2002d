"""Stand-in for Forge's modules/sd_samplers_kdiffusion.py (dfdcbab6).

Forge's KDiffusionSampler differs from A1111's where W2SD cares: the CFG denoiser's inner model
is a ForgeScheduleLinker over `forge_objects.unet.model.predictor` whose `inner_model` is
shared.sd_model (KD:59-66); sample / sample_img2img call `sampling_prepare(forge_objects.unet)`
BEFORE the sampler function (KD:137-138, 197-198), noise with `predictor.noise_scaling`, and then
`self.func(self.model_wrap_cfg, x, extra_args=..., disable=False, callback=self.callback_state, **kw)`
(KD:188, 238). The sampler table and schedules are the A1111 stand-in's.
"""

import inspect

import k_diffusion.sampling
import torch
from backend.sampling.sampling_function import sampling_cleanup, sampling_prepare

from modules import a1111_stand_in, devices, sd_samplers_cfg_denoiser, sd_samplers_common, shared

_a1111 = a1111_stand_in("sd_samplers_kdiffusion")
samplers_k_diffusion = _a1111.samplers_k_diffusion
sampler_extra_params = _a1111.sampler_extra_params


class ForgeScheduleLinker(torch.nn.Module):
    """k_diffusion/external.py:41-73 of Forge's k_diffusion copy."""

    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor

    @property
    def sigmas(self):
        return self.predictor.sigmas

    def get_sigmas(self, n=None):
        t_max = len(self.sigmas) - 1
        t = torch.linspace(t_max, 0, n, device=self.sigmas.device)
        return k_diffusion.sampling.append_zero(self.predictor.sigma(t))


class CFGDenoiserKDiffusion(sd_samplers_cfg_denoiser.CFGDenoiser):
    @property
    def inner_model(self):
        if self.model_wrap is None:
            self.model_wrap = ForgeScheduleLinker(shared.sd_model.forge_objects.unet.model.predictor)
            self.model_wrap.inner_model = shared.sd_model
        return self.model_wrap


class KDiffusionSampler(_a1111.KDiffusionSampler):
    """__init__ and get_sigmas are A1111's (Forge kept them); the sampling calls differ below."""

    cfg_denoiser_class = CFGDenoiserKDiffusion

    def _kwargs(self, p, sigmas, x, noise_sigmas):
        extra_params_kwargs = self.initialize(p)
        parameters = inspect.signature(self.func).parameters
        if "sigma_min" in parameters:
            extra_params_kwargs["sigma_min"] = sigmas[-2]
            extra_params_kwargs["sigma_max"] = sigmas[0]
        if "n" in parameters:
            extra_params_kwargs["n"] = len(sigmas) - 1
        if "sigmas" in parameters:
            extra_params_kwargs["sigmas"] = sigmas
        if self.config.options.get("brownian_noise", False):
            extra_params_kwargs["noise_sampler"] = self.create_noise_sampler(x, noise_sigmas, p)
        return extra_params_kwargs

    def _extra_args(self, p, conditioning, unconditional_conditioning, image_conditioning):
        return {"cond": conditioning, "image_cond": image_conditioning, "uncond": unconditional_conditioning,
                "cond_scale": p.cfg_scale, "s_min_uncond": self.s_min_uncond}

    def sample_img2img(self, p, x, noise, conditioning, unconditional_conditioning, steps=None,
                       image_conditioning=None):
        unet_patcher = self.model_wrap.inner_model.forge_objects.unet
        sampling_prepare(self.model_wrap.inner_model.forge_objects.unet, x=x)
        steps, t_enc = sd_samplers_common.setup_img2img_steps(p, steps)
        sigmas = self.get_sigmas(p, steps)
        sigma_sched = sigmas[steps - t_enc - 1:]
        xi = self.model_wrap.predictor.noise_scaling(sigma_sched[0], noise, x.to(noise), max_denoise=False)
        extra_params_kwargs = self._kwargs(p, sigma_sched, x, sigmas)
        self.model_wrap_cfg.init_latent = x
        self.last_latent = x
        self.sampler_extra_args = self._extra_args(p, conditioning, unconditional_conditioning, image_conditioning)
        samples = self.launch_sampling(t_enc + 1, lambda: self.func(
            self.model_wrap_cfg, xi, extra_args=self.sampler_extra_args, disable=False,
            callback=self.callback_state, **extra_params_kwargs))
        sampling_cleanup(unet_patcher)
        return samples

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        unet_patcher = self.model_wrap.inner_model.forge_objects.unet
        sampling_prepare(self.model_wrap.inner_model.forge_objects.unet, x=x)
        steps = steps or p.steps
        sigmas = self.get_sigmas(p, steps)
        x = self.model_wrap.predictor.noise_scaling(sigmas[0], x, torch.zeros_like(x), max_denoise=False)
        extra_params_kwargs = self._kwargs(p, sigmas, x, sigmas)
        self.last_latent = x
        self.sampler_extra_args = self._extra_args(p, conditioning, unconditional_conditioning, image_conditioning)
        samples = self.launch_sampling(steps, lambda: self.func(
            self.model_wrap_cfg, x, extra_args=self.sampler_extra_args, disable=False,
            callback=self.callback_state, **extra_params_kwargs))
        sampling_cleanup(unet_patcher)
        return samples


samplers_data_k_diffusion = [
    sd_samplers_common.SamplerData(label, lambda model, funcname=funcname: KDiffusionSampler(funcname, model),
                                   aliases, options)
    for label, funcname, aliases, options in samplers_k_diffusion
]
