"""Stand-in for modules/sd_samplers_timesteps.py (A1111 v1.10.1, 82a973c0): DDIM as a
CompVisSampler whose function walks integer timesteps, not sigmas (the real one lives in
sd_samplers_timesteps_impl.ddim with the signature copied here). W2SD runs such samplers plain."""

import torch

from modules import sd_samplers_common
from modules.sd_samplers_kdiffusion import CFGDenoiserKDiffusion


def ddim(model, x, timesteps, extra_args=None, callback=None, disable=None, eta=0.0):
    """Not DDIM's maths: only its calling convention and one call per timestep."""
    for i, t in enumerate(timesteps.flip(0)):
        x = model(x, t * x.new_ones([x.shape[0]]), **extra_args)
        callback({"x": x, "i": i})
    return x


samplers_timesteps = [("DDIM", ddim, ["ddim"], {})]

samplers_data_timesteps = [
    sd_samplers_common.SamplerData(label, lambda model, funcname=funcname: CompVisSampler(funcname, model), aliases, options)
    for label, funcname, aliases, options in samplers_timesteps
]


class CompVisSampler(sd_samplers_common.Sampler):
    def __init__(self, funcname, sd_model):
        super().__init__(funcname)
        self.eta_option_field = "eta_ddim"
        self.model_wrap_cfg = CFGDenoiserKDiffusion(self)

    def sample(self, p, x, conditioning, unconditional_conditioning, steps=None, image_conditioning=None):
        steps = steps or p.steps
        timesteps = torch.linspace(1, 999, steps).round()
        self.initialize(p)
        self.sampler_extra_args = {"cond": conditioning, "image_cond": image_conditioning, "uncond": unconditional_conditioning,
                                   "cond_scale": p.cfg_scale, "s_min_uncond": self.s_min_uncond}
        return self.launch_sampling(steps, lambda: self.func(
            self.model_wrap_cfg, x, timesteps, extra_args=self.sampler_extra_args, disable=False, callback=self.callback_state))
