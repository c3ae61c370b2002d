"""Stand-in for backend/patcher/lora.py (Forge dfdcbab6).

Kept: `merge_lora_to_weight` for the patch types 'diff', 'set' and 'lora' (with DoRA), same
patch layout [strength_patch, value, strength_model, offset, function] (lora.py:84-322);
`LoraLoader.refresh` (lora.py:344-447): restore every patched weight from its backup, then merge
merged-mode patches into the weights and attach online-mode ones as `forge_online_loras`;
skipped while the patch keys are unchanged. `model_lora_keys_unet` / `load_lora` turn a
kohya-style LoRA state dict ('<key>.lora_up.weight', '.lora_down.weight', '.alpha') into patches.
"""

import torch

from backend import utils


def weight_decompose(dora_scale, weight, lora_diff, alpha, strength, computation_dtype, function):
    """lora.py:51-81 (output-axis case)."""
    lora_diff = lora_diff * alpha
    weight_calc = weight + function(lora_diff).type(weight.dtype)
    weight_norm = weight_calc.reshape(weight_calc.shape[0], -1).norm(dim=1, keepdim=True)
    weight_norm = weight_norm.reshape(weight_calc.shape[0], *[1] * (weight_calc.dim() - 1))
    weight_calc = weight_calc * (dora_scale.to(weight) / weight_norm)
    if strength != 1.0:
        return weight + strength * (weight_calc - weight)
    return weight_calc


@torch.inference_mode()
def merge_lora_to_weight(patches, weight, key="online_lora", computation_dtype=torch.float32):
    backup_dtype = None
    if computation_dtype == weight.dtype:
        weight = weight.clone()
    else:
        backup_dtype = weight.dtype
        weight = weight.to(dtype=computation_dtype)

    for strength, v, strength_model, offset, function in patches:
        function = function or (lambda a: a)
        if offset is not None:
            raise NotImplementedError("stand-in: offset patches")
        if strength_model != 1.0:
            weight *= strength_model
        patch_type, v = ("diff", v) if len(v) == 1 else (v[0], v[1])
        if patch_type == "diff":
            weight += strength * v[0].to(weight)
        elif patch_type == "set":
            weight.copy_(v[0])
        elif patch_type == "lora":
            up, down, alpha, _mid, dora_scale = v
            alpha = alpha / down.shape[0] if alpha is not None else 1.0
            lora_diff = torch.mm(up.flatten(1).to(computation_dtype), down.flatten(1).to(computation_dtype))
            lora_diff = lora_diff.reshape(weight.shape)
            if dora_scale is not None:
                weight = weight_decompose(dora_scale, weight, lora_diff, alpha, strength, computation_dtype, function)
            else:
                weight += function(((strength * alpha) * lora_diff).type(weight.dtype))
        else:
            raise NotImplementedError(f"stand-in: patch type {patch_type}")

    return weight.to(backup_dtype) if backup_dtype is not None else weight


def model_lora_keys_unet(model, key_map=None):
    """LoRA key -> model parameter key for every weight of the KModel's diffusion_model."""
    key_map = {} if key_map is None else key_map
    for k, _ in model.named_parameters():
        if k.startswith("diffusion_model.") and k.endswith(".weight"):
            key_map["lora_unet_" + k[len("diffusion_model."):-len(".weight")].replace(".", "_")] = k
    return key_map


def load_lora(lora, to_load):
    """Patches {model key: ('lora', (up, down, alpha, mid, dora_scale))} and the unmatched rest."""
    patch_dict, loaded = {}, set()
    for lora_key, model_key in to_load.items():
        up = lora.get(f"{lora_key}.lora_up.weight")
        if up is None:
            continue
        down = lora[f"{lora_key}.lora_down.weight"]
        alpha = lora.get(f"{lora_key}.alpha")
        dora = lora.get(f"{lora_key}.dora_scale")
        patch_dict[model_key] = ("lora", (up, down, None if alpha is None else float(alpha), None, dora))
        loaded |= {f"{lora_key}.lora_up.weight", f"{lora_key}.lora_down.weight", f"{lora_key}.alpha",
                   f"{lora_key}.dora_scale"}
    return patch_dict, {k: v for k, v in lora.items() if k not in loaded}


class LoraLoader:
    def __init__(self, model):
        self.model = model
        self.backup = {}
        self.online_backup = []
        self.loaded_hash = str([])
        self.refresh_count = 0

    @torch.inference_mode()
    def refresh(self, lora_patches, offload_device=torch.device("cpu"), force_refresh=False):
        hashes = str(list(lora_patches.keys()))
        if hashes == self.loaded_hash and not force_refresh:
            return
        self.refresh_count += 1

        all_patches = {}
        for (_, _, _, online_mode), patches in lora_patches.items():
            for key, current_patches in patches.items():
                all_patches[(key, online_mode)] = all_patches.get((key, online_mode), []) + current_patches

        for m in set(self.online_backup):
            del m.forge_online_loras
        self.online_backup = []
        for k, w in self.backup.items():
            utils.set_attr_raw(self.model, k, utils.tensor2parameter(w))
        self.backup = {}

        for (key, online_mode), current_patches in all_patches.items():
            parent_layer, child_key, weight = utils.get_attr_with_parent(self.model, key)
            if online_mode:
                if not hasattr(parent_layer, "forge_online_loras"):
                    parent_layer.forge_online_loras = {}
                parent_layer.forge_online_loras[child_key] = current_patches
                self.online_backup.append(parent_layer)
                continue
            if key not in self.backup:
                self.backup[key] = weight.to(device=offload_device, copy=True)
            weight = merge_lora_to_weight(current_patches, weight, key, computation_dtype=torch.float32)
            utils.set_attr_raw(self.model, key, torch.nn.Parameter(weight, requires_grad=False))

        self.loaded_hash = hashes
