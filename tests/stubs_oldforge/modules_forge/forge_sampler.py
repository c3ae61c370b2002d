"""Stand-in for modules_forge/forge_sampler.py (C:1f95d717 = R:3b56b268 but for reForge's extra
mask handling): the A1111 conds turned into ldm_patched's (C:8-52: a tensor, or SDXL's dict as
c_crossattn + y; the AND-subprompts by position, each with the weight of its position),
forge_sample (C:55-96, the hand-off Classic's denoiser makes: the UNet patcher read from
forge_objects on every call, its image cond, ControlNet list and conditioning_modifiers, then
sampling_function), sampling_prepare / sampling_cleanup (C:99-134)."""

import torch
from ldm_patched.modules import model_management
from ldm_patched.modules.conds import CONDCrossAttn, CONDRegular
from ldm_patched.modules.samplers import sampling_function


def cond_from_a1111_to_patched_ldm(cond):
    if isinstance(cond, torch.Tensor):
        return [dict(cross_attn=cond, model_conds=dict(c_crossattn=CONDCrossAttn(cond)))]
    return [dict(cross_attn=cond["crossattn"], pooled_output=cond["vector"],
                 model_conds=dict(c_crossattn=CONDCrossAttn(cond["crossattn"]), y=CONDRegular(cond["vector"])))]


def cond_from_a1111_to_patched_ldm_weighted(cond, weights):
    results = []
    for cond_pre in map(list, zip(*weights)):
        indices = [i for i, _ in cond_pre]
        feed = {k: v[indices] for k, v in cond.items()} if isinstance(cond, dict) else cond[indices]
        h = cond_from_a1111_to_patched_ldm(feed)
        h[0]["strength"] = cond_pre[-1][1]
        results += h
    return results


def attach_image_cond_and_control(unet, x, image_cond, conds):
    """C:68-86 (and reForge's denoiser, R:modules/sd_samplers_cfg_denoiser.py:220-236)."""
    image_cond_in = unet.extra_concat_condition if unet.extra_concat_condition is not None else image_cond
    if isinstance(image_cond_in, torch.Tensor) and image_cond_in.shape[0] == x.shape[0] and \
            image_cond_in.shape[2:] == x.shape[2:]:
        for h in conds:
            h["model_conds"]["c_concat"] = CONDRegular(image_cond_in)
    if unet.controlnet_linked_list is not None:
        for h in conds:
            h["control"] = unet.controlnet_linked_list


def forge_sample(self, denoiser_params, cond_scale, cond_composition):
    unet = self.inner_model.inner_model.forge_objects.unet
    model, model_options, seed = unet.model, unet.model_options, self.p.seeds[0]
    x, timestep = denoiser_params.x, denoiser_params.sigma
    uncond = cond_from_a1111_to_patched_ldm(denoiser_params.text_uncond)
    cond = cond_from_a1111_to_patched_ldm_weighted(denoiser_params.text_cond, cond_composition)
    attach_image_cond_and_control(unet, x, denoiser_params.image_cond, cond + uncond)
    for modifier in model_options.get("conditioning_modifiers", []):
        model, x, timestep, uncond, cond, cond_scale, model_options, seed = modifier(
            model, x, timestep, uncond, cond, cond_scale, model_options, seed)
    return sampling_function(model, x, timestep, uncond, cond, cond_scale, model_options, seed)


def sampling_prepare(unet, x):
    model_management.load_models_gpu(models=[unet] + unet.extra_model_patchers_during_sampling,
                                     memory_required=unet.memory_required([x.shape[0] * 2, *x.shape[1:]]))


def sampling_cleanup(unet):
    pass
