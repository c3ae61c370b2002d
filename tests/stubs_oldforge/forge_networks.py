"""Stand-in for the Lora extension of reForge (R:3b56b268) and Forge Classic (C:1f95d717),
extensions-builtin/Lora/networks.py + extra_networks_lora.py, which the real WebUI imports as
`networks` (here `forge_networks`: the A1111 stand-in's `networks` is the layer code of tiny_sd).

`<lora:name:te[:unet]>` -> load_networks (C:networks.py:24-90): unless the prompt's LoRAs and
multipliers are those already applied (current_lora_hash), forge_objects.unet goes back to the
checkpoint's own patcher, each LoRA file is added with load_lora_for_models (a new clone with its
patches at the UNet multiplier), and forge_objects_after_applying_lora becomes the result."""

from ldm_patched.modules.sd import load_lora_for_models
from safetensors.torch import load_file

from modules import extra_networks, shared

available_networks = {}  # name -> file (tests register them)


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    current_sd = shared.sd_model
    compiled_lora_targets = [[available_networks[name], unet, te]
                             for name, unet, te in zip(names, unet_multipliers, te_multipliers)]
    compiled_lora_targets_hash = str(compiled_lora_targets)
    if getattr(current_sd, "current_lora_hash", "[]") == compiled_lora_targets_hash:
        return
    current_sd.current_lora_hash = compiled_lora_targets_hash
    current_sd.forge_objects.unet = current_sd.forge_objects_original.unet
    for filename, strength_model, strength_clip in compiled_lora_targets:
        current_sd.forge_objects.unet, _ = load_lora_for_models(current_sd.forge_objects.unet, None,
                                                                load_file(filename), strength_model, strength_clip,
                                                                filename)
    current_sd.forge_objects_after_applying_lora = current_sd.forge_objects.shallow_copy()


class ExtraNetworkLora(extra_networks.ExtraNetwork):
    """extra_networks_lora.py: te multiplier from the 2nd argument, the UNet one from the 3rd or unet=."""

    def __init__(self):
        super().__init__("lora")

    def activate(self, p, params_list):
        names, te, unet = [], [], []
        for params in params_list:
            names.append(params.positional[0])
            te.append(float(params.positional[1]) if len(params.positional) > 1 else 1.0)
            unet.append(float(params.named.get("unet", params.positional[2] if len(params.positional) > 2 else te[-1])))
        load_networks(names, te, unet)

    def deactivate(self, p):
        pass
