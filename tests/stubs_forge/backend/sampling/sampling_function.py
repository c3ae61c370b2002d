"""Stand-in for backend/sampling/sampling_function.py (+ condition.py) (Forge dfdcbab6).

Kept: the UNet patcher is read from `forge_objects.unet` on every call (SF:326), with its
`controlnet_linked_list` (SF:328, 352-357); the unconditional batch is dropped when cond_scale is 1
(SF:295-298); cond and uncond run as one batch through `model.apply_model` (SF:154-289 without
areas, masks and memory chunking), with transformer_options (cond_or_uncond, sigmas) and the
linked list's control for the batch (SF:238-268); `model_options` cfg functions;
`sampling_prepare` loads the UNet, its extra model patchers and the control models and runs the
control nodes' pre_run (SF:366-399); `sampling_cleanup` their cleanup (SF:402-408).
"""

import math

import torch

from backend import memory_management
from backend.patcher import controlnet


def compile_conditions(cond):
    """condition.py:91-119: a tensor (SD1.5) or a dict {crossattn, vector} (SDXL)."""
    if cond is None:
        return None
    if isinstance(cond, torch.Tensor):
        return [dict(cross_attn=cond, model_conds=dict(c_crossattn=cond))]
    return [dict(cross_attn=cond["crossattn"], model_conds=dict(c_crossattn=cond["crossattn"], y=cond["vector"]))]


def compile_weighted_conditions(cond, weights):
    """condition.py:122-141."""
    results = []
    for cond_pre in map(list, zip(*weights)):
        indices = [i for i, _ in cond_pre]
        feed = {k: v[indices] for k, v in cond.items()} if isinstance(cond, dict) else cond[indices]
        h = compile_conditions(feed)
        h[0]["strength"] = cond_pre[-1][1]
        results += h
    return results


def calc_cond_uncond_batch(model, cond, uncond, x_in, timestep, model_options):
    to_run = [(c, 0) for c in cond] + [(u, 1) for u in (uncond or [])]
    n = len(to_run)
    conds = {}
    for key in to_run[0][0]["model_conds"]:
        conds[key] = torch.cat([c["model_conds"][key] for c, _ in to_run])
    input_x, timestep_ = torch.cat([x_in] * n), torch.cat([timestep] * n)
    transformer_options = dict(model_options.get("transformer_options", {}))
    transformer_options["cond_or_uncond"] = [which for _, which in to_run]
    transformer_options["sigmas"] = timestep
    conds["transformer_options"] = transformer_options
    controlnet.new_batch_log()
    control = to_run[0][0].get("control")
    if control is not None:
        p = control
        while p is not None:
            p.transformer_options = transformer_options
            p = p.previous_controlnet
        conds["control"] = control.get_control(input_x, timestep_, dict(conds), n)
    output = model.apply_model(input_x, timestep_, **conds).chunk(n)
    out = [torch.zeros_like(x_in), torch.zeros_like(x_in)]
    count = [torch.full_like(x_in, 1e-37), torch.full_like(x_in, 1e-37)]
    for o, (c, which) in zip(output, to_run):
        mult = c.get("strength", 1.0)
        out[which] += o * mult
        count[which] += mult
    return out[0] / count[0], out[1] / count[1]


def sampling_function_inner(model, x, timestep, uncond, cond, cond_scale, model_options={}, seed=None,
                            return_full=False):
    uncond_ = None if math.isclose(cond_scale, 1.0) and not model_options.get("disable_cfg1_optimization") else uncond
    cond_pred, uncond_pred = calc_cond_uncond_batch(model, cond, uncond_, x, timestep, model_options)
    if "sampler_cfg_function" in model_options:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred, "cond_scale": cond_scale, "timestep": timestep,
                "input": x, "sigma": timestep, "cond_denoised": cond_pred, "uncond_denoised": uncond_pred,
                "model": model, "model_options": model_options}
        cfg_result = x - model_options["sampler_cfg_function"](args)
    else:
        cfg_result = uncond_pred + (cond_pred - uncond_pred) * cond_scale
    return (cfg_result, cond_pred, uncond_pred) if return_full else cfg_result


def sampling_function(self, denoiser_params, cond_scale, cond_composition):
    unet_patcher = self.inner_model.inner_model.forge_objects.unet
    model = unet_patcher.model
    x = denoiser_params.x
    timestep = denoiser_params.sigma
    uncond = compile_conditions(denoiser_params.text_uncond)
    cond = compile_weighted_conditions(denoiser_params.text_cond, cond_composition)
    image_cond = unet_patcher.extra_concat_condition
    if image_cond is None:
        image_cond = denoiser_params.image_cond
    if isinstance(image_cond, torch.Tensor) and image_cond.shape[0] == x.shape[0] and \
            image_cond.shape[2:] == x.shape[2:]:
        for h in cond + (uncond or []):
            h["model_conds"]["c_concat"] = image_cond
    if unet_patcher.controlnet_linked_list is not None:
        for h in cond + (uncond or []):
            h["control"] = unet_patcher.controlnet_linked_list
    return sampling_function_inner(model, x, timestep, uncond, cond, cond_scale, unet_patcher.model_options,
                                   self.p.seeds[0], return_full=True)


def sampling_prepare(unet, x):
    B, C, H, W = x.shape
    additional_model_patchers = unet.extra_model_patchers_during_sampling
    if unet.controlnet_linked_list is not None:
        additional_model_patchers = additional_model_patchers + unet.controlnet_linked_list.get_models()
    memory_management.load_models_gpu(
        models=[unet] + additional_model_patchers,
        memory_required=unet.memory_required([B * 2, C, H, W]),
        hard_memory_preservation=unet.extra_preserved_memory_during_sampling,
    )
    real_model = unet.model
    for cnet in unet.list_controlnets():
        cnet.pre_run(real_model, lambda p: real_model.predictor.percent_to_sigma(p))


def sampling_cleanup(unet):
    for cnet in unet.list_controlnets():
        cnet.cleanup()
