"""Stand-in for modules/sd_samplers_cfg_denoiser.py of reForge (R:3b56b268) and Forge Classic
(C:1f95d717): CFGDenoiser.forward in each fork's own order. __init__, update_inner_model and the
rest are the A1111 stand-in's (both forks kept them).

reForge (R:113-272): interrupt check; apply_refiner(self, x) (no sigma: by call count); its dynamic
clip skip swapping in its own per-step conds (140-148); conds picked by `self.step`; the mask
pre-blend with global-RNG noise only with mask_before_denoising (168-170); cfg_denoiser callbacks;
the hires pass REPLACING cond_scale with p.hr_cfg (180-181); NGMS and skip_early_cond setting
skip_uncond (182-197; `self.step < opts.skip_early_cond` counts steps too); the padding flags reset
(200-201); the conds converted (forge_sampler) and sampling_function called on
forge_objects.unet.model, without uncond at scale 1.0 when skipping (207-245); the mask post-blend
with on_mask_blend (261-262); last_latent, store_latent, cfg_after_cfg, step += 1.

Forge Classic (C:97-150): the same start without dynamic clip skip; the mask PRE-blend on EVERY
call with noise from the global torch RNG (119-121); callbacks; cond_scale forced to 1 while
0 <= step / total_steps <= opts.skip_early_cond, which holds at step 0 even with the option at 0
(126-127), and below s_min_uncond (128-129); forge_sampler.forge_sample; the post-blend without
on_mask_blend (134-135); last_latent, store_latent, cfg_after_cfg, step += 1.
"""

import torch
from ldm_patched.modules.samplers import sampling_function
from modules_forge import forge_sampler

from modules import a1111_stand_in, prompt_parser, sd_samplers_common, shared
from modules.script_callbacks import (
    AfterCFGCallbackParams,
    CFGDenoiserParams,
    cfg_after_cfg_callback,
    cfg_denoiser_callback,
)
from modules.shared import opts, state

_a1111 = a1111_stand_in("sd_samplers_cfg_denoiser")
catenate_conds = _a1111.catenate_conds


class CFGDenoiser(_a1111.CFGDenoiser):
    """reForge's."""

    def _start(self, x, sigma, uncond, cond):
        """What both forks do first: interrupt check, refiner, the conds of this step."""
        if state.interrupted or state.skipped:
            raise sd_samplers_common.InterruptedException
        if sd_samplers_common.apply_refiner(self):
            cond, uncond = self.sampler.sampler_extra_args["cond"], self.sampler.sampler_extra_args["uncond"]
        if getattr(opts, "dynamic_clip_skip_enabled", False):
            schedule = getattr(self.p, "dynamic_clip_skip_schedule", None)
            if schedule:
                selected = (getattr(self.p, "dynamic_clip_skip_sets", None) or {}).get(
                    schedule[min(self.step, len(schedule) - 1)])
                if selected is not None:
                    cond, uncond = selected
        cond_composition, cond = prompt_parser.reconstruct_multicond_batch(cond, self.step)
        return cond_composition, cond, prompt_parser.reconstruct_cond_batch(uncond, self.step)

    def _finish(self, denoised):
        self.sampler.last_latent = denoised
        sd_samplers_common.store_latent(denoised)
        after = AfterCFGCallbackParams(denoised, state.sampling_step, state.sampling_steps)
        cfg_after_cfg_callback(after)
        self.step += 1
        return after.x

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond, **kwargs):
        cond_composition, cond, uncond = self._start(x, sigma, uncond, cond)

        def apply_blend(current_latent, noisy_initial_latent=None):
            noisy_initial_latent = self.init_latent if noisy_initial_latent is None else noisy_initial_latent
            blended_latent = current_latent * self.nmask + noisy_initial_latent * self.mask
            if self.p.scripts is not None:
                from modules import scripts

                mba = scripts.MaskBlendArgs(current_latent, self.nmask, self.init_latent, self.mask, blended_latent,
                                            denoiser=self, sigma=sigma)
                self.p.scripts.on_mask_blend(self.p, mba)
                blended_latent = mba.blended_latent
            return blended_latent

        if self.mask_before_denoising and self.mask is not None:
            x = apply_blend(x, self.init_latent + sigma[:, None, None, None] * torch.randn_like(self.init_latent))
        denoiser_params = CFGDenoiserParams(x, image_cond, sigma, state.sampling_step, state.sampling_steps, cond,
                                            uncond, self)
        cfg_denoiser_callback(denoiser_params)

        skip_uncond = False
        if self.p.is_hr_pass:
            cond_scale = self.p.hr_cfg
        s_min_uncond = getattr(shared.opts, "s_min_uncond", 0.0)
        if s_min_uncond > 0 and sigma[0] < s_min_uncond and (self.step % 2 == 0 or shared.opts.s_min_uncond_all):
            skip_uncond = True
            self.p.extra_generation_params["NGMS"] = s_min_uncond
            if shared.opts.s_min_uncond_all:
                self.p.extra_generation_params["NGMS all steps"] = shared.opts.s_min_uncond_all
        if not skip_uncond:
            if self.step < shared.opts.skip_early_cond:
                skip_uncond = True
            elif shared.opts.skip_early_cond != 0. and self.step / self.total_steps <= shared.opts.skip_early_cond:
                skip_uncond = True
                self.p.extra_generation_params["Skip Early CFG"] = shared.opts.skip_early_cond
        self.padded_cond_uncond = False
        self.padded_cond_uncond_v0 = False

        unet = self.inner_model.inner_model.forge_objects.unet
        model, model_options, seed = unet.model, unet.model_options, self.p.seeds[0]
        uncond_patched = forge_sampler.cond_from_a1111_to_patched_ldm(denoiser_params.text_uncond)
        cond_patched = forge_sampler.cond_from_a1111_to_patched_ldm_weighted(denoiser_params.text_cond,
                                                                             cond_composition)
        forge_sampler.attach_image_cond_and_control(unet, x, denoiser_params.image_cond, cond_patched + uncond_patched)
        for modifier in model_options.get("conditioning_modifiers", []):
            model, x, sigma, uncond_patched, cond_patched, cond_scale, model_options, seed = modifier(
                model, x, sigma, uncond_patched, cond_patched, cond_scale, model_options, seed)
        if skip_uncond:
            denoised = sampling_function(model, x, sigma, None, cond_patched, 1.0, model_options, seed)
        else:
            denoised = sampling_function(model, x, sigma, uncond_patched, cond_patched, cond_scale, model_options,
                                         seed)
        if not self.mask_before_denoising and self.mask is not None:
            denoised = apply_blend(denoised)
        return self._finish(denoised)


class ClassicCFGDenoiser(CFGDenoiser):
    """Forge Classic's (it has no dynamic clip skip: opts.dynamic_clip_skip_enabled stays off there)."""

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        cond_composition, cond, uncond = self._start(x, sigma, uncond, cond)
        if self.mask is not None:
            noisy_initial_latent = self.init_latent + sigma[:, None, None, None] * torch.randn_like(
                self.init_latent).to(self.init_latent)
            x = x * self.nmask + noisy_initial_latent * self.mask
        denoiser_params = CFGDenoiserParams(x, image_cond, sigma, state.sampling_step, state.sampling_steps, cond,
                                            uncond, self)
        cfg_denoiser_callback(denoiser_params)
        if 0.0 <= self.step / self.total_steps <= opts.skip_early_cond:
            cond_scale = 1.0
        if s_min_uncond > 0.0 and sigma[0] < s_min_uncond:
            cond_scale = 1.0
        denoised = forge_sampler.forge_sample(self, denoiser_params=denoiser_params, cond_scale=cond_scale,
                                              cond_composition=cond_composition)
        if self.mask is not None:
            denoised = denoised * self.nmask + self.init_latent * self.mask
        return self._finish(denoised)
