"""Stand-in for modules/sd_samplers_common.py (A1111 v1.10.1, 82a973c0): SamplerData,
setup_img2img_steps, store_latent, InterruptedException (a BaseException), apply_refiner (as
it is), TorchHijack, and the Sampler base class (callback_state, launch_sampling, initialize,
create_noise_sampler) with the real logic of each, minus live previews."""

import inspect
from collections import namedtuple

import k_diffusion.sampling
import torch

from modules import devices, sd_models, shared
from modules.shared import opts, state

SamplerDataTuple = namedtuple("SamplerData", ["name", "constructor", "aliases", "options"])


class SamplerData(SamplerDataTuple):
    def total_steps(self, steps):
        return steps * 2 if self.options.get("second_order", False) else steps


def setup_img2img_steps(p, steps=None):
    if opts.img2img_fix_steps or steps is not None:
        requested_steps = steps or p.steps
        steps = int(requested_steps / min(p.denoising_strength, 0.999)) if p.denoising_strength > 0 else 0
        t_enc = requested_steps - 1
    else:
        steps = p.steps
        t_enc = int(min(p.denoising_strength, 0.999) * steps)
    return steps, t_enc


def store_latent(decoded):
    state.current_latent = decoded


class InterruptedException(BaseException):
    pass


def switch_now(cfg_denoiser, completed_ratio):
    """apply_refiner's rules (lines 171-193; Forge's 168-190 are the same): the refiner to load
    now, with its infotext keys written, or None."""
    refiner_switch_at = cfg_denoiser.p.refiner_switch_at
    refiner_checkpoint_info = cfg_denoiser.p.refiner_checkpoint_info
    if refiner_switch_at is not None and completed_ratio < refiner_switch_at:
        return None
    if refiner_checkpoint_info is None or shared.sd_model.sd_checkpoint_info == refiner_checkpoint_info:
        return None
    if getattr(cfg_denoiser.p, "enable_hr", False):
        is_second_pass = cfg_denoiser.p.is_hr_pass
        if opts.hires_fix_refiner_pass == "first pass" and is_second_pass:
            return None
        if opts.hires_fix_refiner_pass == "second pass" and not is_second_pass:
            return None
        if opts.hires_fix_refiner_pass != "second pass":
            cfg_denoiser.p.extra_generation_params["Hires refiner"] = opts.hires_fix_refiner_pass
    cfg_denoiser.p.extra_generation_params["Refiner"] = refiner_checkpoint_info.short_title
    cfg_denoiser.p.extra_generation_params["Refiner switch at"] = refiner_switch_at
    return refiner_checkpoint_info


def apply_refiner(cfg_denoiser, sigma=None):
    """sd_samplers_common.py:158-202, as it is: in every CFG denoiser call, the completed ratio (by
    the call's timestep, or by the call count) decides whether to load the refiner now."""
    if opts.refiner_switch_by_sample_steps or sigma is None:
        completed_ratio = cfg_denoiser.step / cfg_denoiser.total_steps
        cfg_denoiser.p.extra_generation_params["Refiner switch by sampling steps"] = True
    else:
        timestep = torch.argmin(torch.abs(cfg_denoiser.inner_model.sigmas.to(sigma.device) - torch.max(sigma)))
        completed_ratio = (999 - timestep) / 1000

    refiner_checkpoint_info = switch_now(cfg_denoiser, completed_ratio)
    if refiner_checkpoint_info is None:
        return False
    with sd_models.SkipWritingToConfig():
        sd_models.reload_model_weights(info=refiner_checkpoint_info)
    devices.torch_gc()
    cfg_denoiser.p.setup_conds()
    cfg_denoiser.update_inner_model()
    return True


class TorchHijack:
    """Replaces `torch` inside k_diffusion.sampling so that randn_like draws from p.rng."""

    def __init__(self, p):
        self.rng = p.rng

    def __getattr__(self, item):
        if item == "randn_like":
            return self.randn_like
        import torch

        if hasattr(torch, item):
            return getattr(torch, item)
        raise AttributeError(item)

    def randn_like(self, x):
        return self.rng.next()


class Sampler:
    def __init__(self, funcname):
        self.funcname = funcname
        self.func = funcname
        self.extra_params = []
        self.stop_at = None
        self.eta = None
        self.config = None
        self.last_latent = None
        self.s_min_uncond = None
        self.p = None
        self.model_wrap_cfg = None
        self.sampler_extra_args = None
        self.options = {}

    def callback_state(self, d):
        step = d["i"]
        if self.stop_at is not None and step > self.stop_at:
            raise InterruptedException
        state.sampling_step = step
        shared.total_tqdm.update()

    def launch_sampling(self, steps, func):
        self.model_wrap_cfg.steps = steps
        self.model_wrap_cfg.total_steps = self.config.total_steps(steps)
        state.sampling_steps = steps
        state.sampling_step = 0
        try:
            return func()
        except InterruptedException:
            return self.last_latent

    def initialize(self, p) -> dict:
        self.p = p
        self.model_wrap_cfg.p = p
        self.model_wrap_cfg.mask = p.mask if hasattr(p, "mask") else None
        self.model_wrap_cfg.nmask = p.nmask if hasattr(p, "nmask") else None
        self.model_wrap_cfg.step = 0
        self.model_wrap_cfg.image_cfg_scale = getattr(p, "image_cfg_scale", None)
        self.eta = p.eta if p.eta is not None else getattr(opts, "eta_ancestral", 1.0)
        self.s_min_uncond = getattr(p, "s_min_uncond", 0.0)

        k_diffusion.sampling.torch = TorchHijack(p)

        extra_params_kwargs = {}
        parameters = inspect.signature(self.func).parameters
        for param_name in self.extra_params:
            if hasattr(p, param_name) and param_name in parameters:
                extra_params_kwargs[param_name] = getattr(p, param_name)
        if "eta" in parameters:
            extra_params_kwargs["eta"] = self.eta
        return extra_params_kwargs

    def create_noise_sampler(self, x, sigmas, p):
        if shared.opts.no_dpmpp_sde_batch_determinism:
            return None
        from k_diffusion.sampling import BrownianTreeNoiseSampler

        sigma_min, sigma_max = sigmas[sigmas > 0].min(), sigmas.max()
        seeds = p.all_seeds[p.iteration * p.batch_size:(p.iteration + 1) * p.batch_size]
        return BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed=seeds)

    def add_infotext(self, p):
        pass
