"""Stand-in for ldm_patched/modules/lora.py (C:1f95d717, R:3b56b268): kohya LoRA keys of the UNet
(model_lora_keys_unet, C:258-: 'lora_unet_<path with _>' -> 'diffusion_model.<path>.weight') and
load_lora (C:17-50: lora_up / lora_down / alpha as ("lora", (up, down, alpha, mid)); a
.dora_scale as reForge's DoRA, R:37-96), and the merge of a weight's patches ('diff' and 'lora', DoRA
by weight_decompose): reForge's calculate_weight (R:331-), which Classic does not have (its merge is
ModelPatcher.calculate_weight, C:model_patcher.py:271-): the harness removes it when playing Classic."""

import torch


def model_lora_keys_unet(model, key_map=None):
    key_map = {} if key_map is None else key_map
    for k in model.state_dict():
        if k.startswith("diffusion_model.") and k.endswith(".weight"):
            key_map["lora_unet_" + k[len("diffusion_model."):-len(".weight")].replace(".", "_")] = k
    return key_map


def load_lora(lora, to_load):
    patch_dict, loaded_keys = {}, set()
    for x, target in to_load.items():
        up, down, alpha = f"{x}.lora_up.weight", f"{x}.lora_down.weight", f"{x}.alpha"
        if up not in lora:
            continue
        loaded_keys.update({up, down} | ({alpha} if alpha in lora else set()))
        dora = lora.get(f"{x}.dora_scale")
        if dora is not None:
            loaded_keys.add(f"{x}.dora_scale")
        patch_dict[target] = ("lora", (lora[up], lora[down], lora[alpha].item() if alpha in lora else None, None,
                                       dora))
    return patch_dict, {k: v for k, v in lora.items() if k not in loaded_keys}


def merge(patches, weight, key):
    """The merged weight of `patches` (strength_patch, value, strength_model) on `weight`."""
    for strength, v, strength_model in patches:
        if strength_model != 1.0:
            weight *= strength_model
        kind, v = ("diff", v) if len(v) == 1 else v
        if kind == "diff":
            weight += strength * v[0].to(weight)
        elif kind == "lora":
            up, down = v[0].to(weight).flatten(1), v[1].to(weight).flatten(1)
            alpha = strength * (v[2] / down.shape[0] if v[2] is not None else 1.0)
            diff = (up @ down).reshape(weight.shape)
            if len(v) > 4 and v[4] is not None:
                weight = _weight_decompose(v[4].to(weight), weight, diff, alpha)
            else:
                weight += alpha * diff
    return weight


def calculate_weight(patches, weight, key, intermediate_dtype=torch.float32, original_weights=None):
    """reForge's (R:331-)."""
    return merge(patches, weight, key)


def _weight_decompose(dora_scale, weight, lora_diff, alpha):
    """reForge's DoRA (weight_decompose): the merged weight's direction with the LoRA added, scaled
    to dora_scale per output channel."""
    weight_calc = weight + alpha * lora_diff
    norm = weight_calc.flatten(1).norm(dim=1).reshape(-1, *[1] * (weight.dim() - 1)) + torch.finfo(weight.dtype).eps
    return weight_calc * (dora_scale.reshape(norm.shape) / norm)
