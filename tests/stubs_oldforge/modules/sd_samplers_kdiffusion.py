"""Stand-in for modules/sd_samplers_kdiffusion.py of reForge (R:3b56b268) and Forge Classic
(C:1f95d717): A1111's KDiffusionSampler (the CFG denoiser's inner model is k-diffusion's
CompVisDenoiser of shared.sd_model, R:80-92) whose sample / sample_img2img first load the UNet
patcher of forge_objects through sampling_prepare and end with sampling_cleanup (R:194-312,
C:145-255). The sampler table and schedules are the A1111 stand-in's."""

import k_diffusion.external
from modules_forge.forge_sampler import sampling_cleanup, sampling_prepare

from modules import a1111_stand_in, is_classic, sd_samplers_cfg_denoiser, sd_samplers_common, shared

_a1111 = a1111_stand_in("sd_samplers_kdiffusion")
samplers_k_diffusion = _a1111.samplers_k_diffusion
sampler_extra_params = _a1111.sampler_extra_params


def _kdiffusion(base):
    class CFGDenoiserKDiffusion(base):
        @property
        def inner_model(self):
            if self.model_wrap is None:
                self.model_wrap = k_diffusion.external.CompVisDenoiser(shared.sd_model)
            return self.model_wrap

    return CFGDenoiserKDiffusion


CFGDenoiserKDiffusion = _kdiffusion(sd_samplers_cfg_denoiser.CFGDenoiser)
ClassicCFGDenoiserKDiffusion = _kdiffusion(sd_samplers_cfg_denoiser.ClassicCFGDenoiser)


class KDiffusionSampler(_a1111.KDiffusionSampler):
    def __init__(self, funcname, sd_model, options=None):
        self.cfg_denoiser_class = ClassicCFGDenoiserKDiffusion if is_classic() else CFGDenoiserKDiffusion
        super().__init__(funcname, sd_model, options)

    def _prepared(self, sample, x, *args, **kwargs):
        unet_patcher = self.model_wrap.inner_model.forge_objects.unet
        sampling_prepare(unet_patcher, x=x)
        samples = sample(x, *args, **kwargs)
        sampling_cleanup(unet_patcher)
        return samples

    def sample_img2img(self, p, x, *args, **kwargs):
        return self._prepared(lambda *a, **k: super(KDiffusionSampler, self).sample_img2img(p, *a, **k), x,
                              *args, **kwargs)

    def sample(self, p, x, *args, **kwargs):
        return self._prepared(lambda *a, **k: super(KDiffusionSampler, self).sample(p, *a, **k), x, *args, **kwargs)


samplers_data_k_diffusion = [
    sd_samplers_common.SamplerData(label, lambda model, funcname=funcname: KDiffusionSampler(funcname, model),
                                   aliases, options)
    for label, funcname, aliases, options in samplers_k_diffusion
]
