"""Stand-in for modules/sd_samplers_cfg_denoiser.py (A1111 v1.10.1, 82a973c0): CFGDenoiser.forward
with the real order of things: interrupt check, refiner (update_inner_model), conds picked by the call counter
`self.step` (prompt editing), cfg_denoiser callbacks, skip-early-CFG / NGMS skipping the
uncond batch, one batched UNet call (cond rows then uncond rows), combine_denoised, the
inpainting blend (with on_mask_blend), sampler.last_latent, store_latent, step += 1.
Left out: InstructPix2Pix edit models, cond/uncond padding, live previews."""

import torch

from modules import prompt_parser, sd_samplers_common, shared
from modules.script_callbacks import (
    AfterCFGCallbackParams, CFGDenoisedParams, CFGDenoiserParams,
    cfg_after_cfg_callback, cfg_denoised_callback, cfg_denoiser_callback,
)
from modules.shared import state


def catenate_conds(conds):
    if not isinstance(conds[0], dict):
        return torch.cat(conds)
    return {key: torch.cat([x[key] for x in conds]) for key in conds[0].keys()}


class CFGDenoiser(torch.nn.Module):
    def __init__(self, sampler):
        super().__init__()
        self.model_wrap = None
        self.mask = None
        self.nmask = None
        self.init_latent = None
        self.steps = None
        self.total_steps = None
        self.step = 0
        self.image_cfg_scale = None
        self.padded_cond_uncond = False
        self.padded_cond_uncond_v0 = False
        self.sampler = sampler
        self.p = None
        self.cond_scale_miltiplier = 1.0
        self.need_last_noise_uncond = False
        self.last_noise_uncond = None
        self.mask_before_denoising = False

    @property
    def inner_model(self):
        raise NotImplementedError()

    def update_inner_model(self):
        """CD:93-98: after the refiner loads, the inner model is rebuilt and the conds re-read."""
        self.model_wrap = None
        c, uc = self.p.get_conds()
        self.sampler.sampler_extra_args["cond"] = c
        self.sampler.sampler_extra_args["uncond"] = uc

    def combine_denoised(self, x_out, conds_list, uncond, cond_scale):
        denoised_uncond = x_out[-uncond.shape[0]:]
        denoised = torch.clone(denoised_uncond)
        for i, conds in enumerate(conds_list):
            for cond_index, weight in conds:
                denoised[i] += (x_out[cond_index] - denoised_uncond[i]) * (weight * cond_scale)
        return denoised

    def get_pred_x0(self, x_in, x_out, sigma):
        return x_out

    def forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        if state.interrupted or state.skipped:
            raise sd_samplers_common.InterruptedException

        if sd_samplers_common.apply_refiner(self, sigma):
            cond = self.sampler.sampler_extra_args["cond"]
            uncond = self.sampler.sampler_extra_args["uncond"]

        conds_list, tensor = prompt_parser.reconstruct_multicond_batch(cond, self.step)
        uncond = prompt_parser.reconstruct_cond_batch(uncond, self.step)

        def apply_blend(current_latent):
            blended_latent = current_latent * self.nmask + self.init_latent * self.mask
            if self.p.scripts is not None:
                from modules import scripts

                mba = scripts.MaskBlendArgs(current_latent, self.nmask, self.init_latent, self.mask, blended_latent, denoiser=self, sigma=sigma)
                self.p.scripts.on_mask_blend(self.p, mba)
                blended_latent = mba.blended_latent
            return blended_latent

        if self.mask_before_denoising and self.mask is not None:
            x = apply_blend(x)

        batch_size = len(conds_list)
        repeats = [len(conds_list[i]) for i in range(batch_size)]

        image_uncond = image_cond
        if isinstance(uncond, dict):
            def make_condition_dict(c_crossattn, c_concat):
                return {**c_crossattn, "c_concat": [c_concat]}
        else:
            def make_condition_dict(c_crossattn, c_concat):
                return {"c_crossattn": [c_crossattn], "c_concat": [c_concat]}

        x_in = torch.cat([torch.stack([x[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [x])
        sigma_in = torch.cat([torch.stack([sigma[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [sigma])
        image_cond_in = torch.cat([torch.stack([image_cond[i] for _ in range(n)]) for i, n in enumerate(repeats)] + [image_uncond])

        denoiser_params = CFGDenoiserParams(x_in, image_cond_in, sigma_in, state.sampling_step, state.sampling_steps, tensor, uncond, self)
        cfg_denoiser_callback(denoiser_params)
        x_in, image_cond_in, sigma_in = denoiser_params.x, denoiser_params.image_cond, denoiser_params.sigma
        tensor, uncond = denoiser_params.text_cond, denoiser_params.text_uncond
        skip_uncond = False

        if shared.opts.skip_early_cond != 0. and self.step / self.total_steps <= shared.opts.skip_early_cond:
            skip_uncond = True
            self.p.extra_generation_params["Skip Early CFG"] = shared.opts.skip_early_cond
        elif (self.step % 2 or shared.opts.s_min_uncond_all) and s_min_uncond > 0 and sigma[0] < s_min_uncond:
            skip_uncond = True
            self.p.extra_generation_params["NGMS"] = s_min_uncond
            if shared.opts.s_min_uncond_all:
                self.p.extra_generation_params["NGMS all steps"] = shared.opts.s_min_uncond_all

        if skip_uncond:
            x_in = x_in[:-batch_size]
            sigma_in = sigma_in[:-batch_size]

        cond_in = tensor if skip_uncond else catenate_conds([tensor, uncond])
        # as in the real one, image_cond_in keeps its uncond rows when the uncond pass is skipped
        # (models that concatenate image conds, inpainting ones, then fail on the batch size)
        x_out = self.inner_model(x_in, sigma_in, cond=make_condition_dict(cond_in, image_cond_in))

        denoised_image_indexes = [x[0][0] for x in conds_list]
        if skip_uncond:
            fake_uncond = torch.cat([x_out[i:i + 1] for i in denoised_image_indexes])
            x_out = torch.cat([x_out, fake_uncond])

        cfg_denoised_callback(CFGDenoisedParams(x_out, state.sampling_step, state.sampling_steps, self.inner_model))

        if skip_uncond:
            denoised = self.combine_denoised(x_out, conds_list, uncond, 1.0)
        else:
            denoised = self.combine_denoised(x_out, conds_list, uncond, cond_scale * self.cond_scale_miltiplier)

        if not self.mask_before_denoising and self.mask is not None:
            denoised = apply_blend(denoised)

        self.sampler.last_latent = self.get_pred_x0(
            torch.cat([x_in[i:i + 1] for i in denoised_image_indexes]),
            torch.cat([x_out[i:i + 1] for i in denoised_image_indexes]), sigma)
        sd_samplers_common.store_latent(self.sampler.last_latent)

        after = AfterCFGCallbackParams(denoised, state.sampling_step, state.sampling_steps)
        cfg_after_cfg_callback(after)
        denoised = after.x

        self.step += 1
        return denoised
