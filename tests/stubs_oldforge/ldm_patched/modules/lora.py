"""Stand-in for ldm_patched/modules/lora.py (C:1f95d717, R:3b56b268): kohya LoRA keys of the UNet
(model_lora_keys_unet, C:258-: 'lora_unet_<path with _>' -> 'diffusion_model.<path>.weight') and
load_lora (C:17-50: lora_up / lora_down / alpha as ("lora", (up, down, alpha, mid)); a
.dora_scale as reForge's DoRA, R:37-96)."""


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
