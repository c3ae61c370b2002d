"""Stand-in for ldm_patched/modules/samplers.py of Forge Classic (C:1f95d717) and reForge (R:3b56b268).

Kept: each cond entry's `strength` as its weight (get_area_and_mult, C:14-94, without areas,
masks and timestep ranges); entries that can concat run as one batch through `model.apply_model`
(or model_options['model_function_wrapper'], which gets that method) with transformer_options
'cond_or_uncond' and 'sigmas', the entries' control for the batch, and the outputs summed by weight
over the summed weights (calc_cond_uncond_batch C:175-329, _calc_cond_batch R:213-355, batching by
free memory); sampling_function drops the uncond batch at cond_scale 1 unless
'disable_cfg1_optimization' (C:334-347, R:413-417) and combines with sampler_cfg_function or
uncond + (cond - uncond) * scale (times the summed strengths when they are not 1), then the
post-CFG functions (C:358-393, R:cfg_function 372-409: a missing uncond gives the cond result).
"""

import collections
import math

import torch

from ldm_patched.modules import model_management

_Run = collections.namedtuple("_Run", ["input_x", "mult", "conditioning", "control"])


def get_area_and_mult(conds, x_in, timestep_in):
    conditioning = {c: v.process_cond(batch_size=x_in.shape[0], device=x_in.device)
                    for c, v in conds["model_conds"].items()}
    return _Run(x_in, torch.ones_like(x_in) * conds.get("strength", 1.0), conditioning, conds.get("control"))


def can_concat_cond(c1, c2):
    if c1.input_x.shape != c2.input_x.shape or c1.control is not c2.control:
        return False
    return c1.conditioning.keys() == c2.conditioning.keys() and \
        all(c1.conditioning[k].can_concat(c2.conditioning[k]) for k in c1.conditioning)


def cond_cat(c_list):
    return {k: c_list[0][k].concat([c[k] for c in c_list[1:]]) for k in c_list[0]}


def calc_cond_batch(model, conds, x_in, timestep, model_options):
    out_conds = [torch.zeros_like(x_in) for _ in conds]
    out_counts = [torch.ones_like(x_in) * 1e-37 for _ in conds]
    to_run = [(get_area_and_mult(x, x_in, timestep), i) for i, cond in enumerate(conds) if cond is not None
              for x in cond]
    while to_run:
        first = to_run[0]
        to_batch_temp = [i for i in range(len(to_run)) if can_concat_cond(to_run[i][0], first[0])]
        to_batch_temp.reverse()
        to_batch = to_batch_temp[:1]
        free_memory = model_management.get_free_memory(x_in.device)
        for i in range(1, len(to_batch_temp) + 1):
            batch_amount = to_batch_temp[:len(to_batch_temp) // i]
            input_shape = [len(batch_amount) * first[0].input_x.shape[0]] + list(first[0].input_x.shape)[1:]
            if model.memory_required(input_shape) < free_memory:
                to_batch = batch_amount
                break
        runs = [to_run.pop(i) for i in to_batch]
        cond_or_uncond = [which for _, which in runs]
        input_x = torch.cat([run.input_x for run, _ in runs])
        c = cond_cat([run.conditioning for run, _ in runs])
        timestep_ = torch.cat([timestep] * len(runs))
        transformer_options = dict(model_options.get("transformer_options", {}))
        transformer_options["cond_or_uncond"] = cond_or_uncond[:]
        transformer_options["sigmas"] = timestep
        c["transformer_options"] = transformer_options
        control = runs[-1][0].control
        if control is not None:
            c["control"] = control.get_control(input_x, timestep_, c, len(cond_or_uncond))
        if "model_function_wrapper" in model_options:
            output = model_options["model_function_wrapper"](model.apply_model, {
                "input": input_x, "timestep": timestep_, "c": c, "cond_or_uncond": cond_or_uncond}).chunk(len(runs))
        else:
            output = model.apply_model(input_x, timestep_, **c).chunk(len(runs))
        for o, (run, which) in zip(output, runs):
            out_conds[which] += o * run.mult
            out_counts[which] += run.mult
    return [out / count for out, count in zip(out_conds, out_counts)]


def calc_cond_uncond_batch(model, cond, uncond, x_in, timestep, model_options):
    return tuple(calc_cond_batch(model, [cond, uncond], x_in, timestep, model_options))


def cfg_function(model, cond_pred, uncond_pred, cond_scale, x, timestep, model_options={}, cond=None, uncond=None):
    edit_strength = sum(item.get("strength", 1) for item in cond)
    if "sampler_cfg_function" in model_options:
        args = {"cond": x - cond_pred, "uncond": x - uncond_pred if uncond_pred is not None else None,
                "cond_scale": cond_scale, "timestep": timestep, "input": x, "sigma": timestep,
                "cond_denoised": cond_pred, "uncond_denoised": uncond_pred, "model": model,
                "model_options": model_options}
        cfg_result = x - model_options["sampler_cfg_function"](args)
    elif uncond_pred is None:
        cfg_result = cond_pred
    elif not math.isclose(edit_strength, 1.0):
        cfg_result = uncond_pred + (cond_pred - uncond_pred) * cond_scale * edit_strength
    else:
        cfg_result = uncond_pred + (cond_pred - uncond_pred) * cond_scale
    for fn in model_options.get("sampler_post_cfg_function", []):
        cfg_result = fn({"denoised": cfg_result, "cond": cond, "uncond": uncond, "model": model, "input": x,
                         "uncond_denoised": uncond_pred, "cond_denoised": cond_pred, "sigma": timestep,
                         "model_options": model_options})
    return cfg_result


def sampling_function(model, x, timestep, uncond, cond, cond_scale, model_options={}, seed=None):
    if math.isclose(cond_scale, 1.0) and not model_options.get("disable_cfg1_optimization", False):
        uncond_ = None
    else:
        uncond_ = uncond
    cond_pred, uncond_pred = calc_cond_batch(model, [cond, uncond_], x, timestep, model_options)
    return cfg_function(model, cond_pred, uncond_pred if uncond_ is not None else None, cond_scale, x, timestep,
                        model_options, cond=cond, uncond=uncond_)
