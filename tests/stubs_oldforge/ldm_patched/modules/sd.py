"""Stand-in for ldm_patched/modules/sd.py load_lora_for_models (C:66-110, R:96-130): the UNet part
of a LoRA file as patches on a CLONE of the UNet patcher at strength_model (the text encoder is left
out here)."""

from ldm_patched.modules import lora as lora_module


def load_lora_for_models(model, clip, lora, strength_model, strength_clip, filename="default"):
    patches, _ = lora_module.load_lora(lora, lora_module.model_lora_keys_unet(model.model))
    new_modelpatcher = model.clone()
    new_modelpatcher.add_patches(patches, strength_model)
    return new_modelpatcher, clip
