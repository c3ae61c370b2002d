"""Stand-in for Forge's extensions-builtin/sd_forge_lora/networks.py + extra_networks_lora.py
(dfdcbab6), imported as `networks` like the real one.

Kept: `load_networks` (networks.py:68-127): unchanged LoRA set -> nothing; otherwise the UNet and
CLIP patchers restart from `forge_objects_original` and each LoRA is added to a CLONE with
`add_patches(filename, patches, strength_patch=unet multiplier, online_mode)`; online mode only
when `dynamic_args['online_lora']` and the UNet is not stored in fp32/fp16/bf16
(networks.py:102-105); the result becomes `forge_objects_after_applying_lora`.
ExtraNetworkLora.activate (extra_networks_lora.py:14-45) parses `<lora:name:te:unet>`.
Tests register LoRA files in `available_networks` (name -> .safetensors path).
"""

import torch
from backend.args import dynamic_args
from backend.patcher.lora import load_lora, model_lora_keys_unet
from backend.utils import load_torch_file
from modules import extra_networks, shared

available_networks = {}
loaded_networks = []


def load_lora_for_models(model, clip, lora, strength_model, strength_clip, filename="default", online_mode=False):
    """networks.py:15-53, UNet part."""
    lora_unet, _ = load_lora(lora, model_lora_keys_unet(model.model))
    new_model = model.clone()
    new_model.add_patches(filename=filename, patches=lora_unet, strength_patch=strength_model, online_mode=online_mode)
    return new_model, clip


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    current_sd = shared.sd_model
    loaded_networks.clear()
    filenames = [available_networks[name] for name in names if name in available_networks]
    loaded_networks.extend(name for name in names if name in available_networks)

    online_mode = dynamic_args.get("online_lora", False)
    if current_sd.forge_objects.unet.model.storage_dtype in [torch.float32, torch.float16, torch.bfloat16]:
        online_mode = False

    targets = [[f, u, t, online_mode] for f, u, t in zip(filenames, unet_multipliers, te_multipliers)]
    if current_sd.current_lora_hash == str(targets):
        return
    current_sd.current_lora_hash = str(targets)
    current_sd.forge_objects.unet = current_sd.forge_objects_original.unet
    current_sd.forge_objects.clip = current_sd.forge_objects_original.clip
    for filename, strength_model, strength_clip, online in targets:
        current_sd.forge_objects.unet, current_sd.forge_objects.clip = load_lora_for_models(
            current_sd.forge_objects.unet, current_sd.forge_objects.clip, load_torch_file(filename, safe_load=True),
            strength_model, strength_clip, filename=filename, online_mode=online)
    current_sd.forge_objects_after_applying_lora = current_sd.forge_objects.shallow_copy()


class ExtraNetworkLora(extra_networks.ExtraNetwork):
    def __init__(self):
        super().__init__("lora")

    def activate(self, p, params_list):
        names, te_multipliers, unet_multipliers = [], [], []
        for params in params_list:
            names.append(params.positional[0])
            te = float(params.positional[1]) if len(params.positional) > 1 else 1.0
            te = float(params.named.get("te", te))
            unet = float(params.positional[2]) if len(params.positional) > 2 else te
            unet_multipliers.append(float(params.named.get("unet", unet)))
            te_multipliers.append(te)
        load_networks(names, te_multipliers, unet_multipliers)

    def deactivate(self, p):
        pass
