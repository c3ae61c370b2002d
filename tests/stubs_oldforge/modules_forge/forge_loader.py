"""Stand-in for modules_forge/forge_loader.py (C:1f95d717, R:3b56b268): ForgeObjects (C:39-47), what
sd_model.forge_objects holds, and load_checkpoint_guess_config (C:71-144, R:214-): from a state dict,
the UNet's config guessed from its tensors (ldm_patched/modules/model_detection.py: here the tiny
UNet's input channels, width and SDXL label layer; a 'v_pred' key for V prediction), the model built
and its weights loaded from 'model.diffusion_model.*', wrapped in a UnetPatcher; text encoders, VAE
and CLIP vision only when asked for (not here)."""

from ldm_patched.modules.model_base import BaseModel

from modules_forge.unet_patcher import UnetPatcher

PREFIX = "model.diffusion_model."
unet_class = None  # the stand-in's UNet class (tiny_sd.TinyUNet; the harness sets it)


class ForgeObjects:
    def __init__(self, unet, clip=None, vae=None, clipvision=None):
        self.unet, self.clip, self.vae, self.clipvision = unet, clip, vae, clipvision

    def shallow_copy(self):
        return ForgeObjects(self.unet, self.clip, self.vae, self.clipvision)


def load_checkpoint_guess_config(sd, output_vae=True, output_clip=True, output_clipvision=False,
                                 embedding_directory=None, output_model=True):
    unet_sd = {k[len(PREFIX):]: v for k, v in sd.items() if k.startswith(PREFIX)}
    if "input.weight" not in unet_sd:
        raise RuntimeError("Could not detect model type")
    label = unet_sd.get("label.weight")
    unet = unet_class(channels=unet_sd["input.weight"].shape[0], in_channels=unet_sd["input.weight"].shape[1],
                            adm_in_channels=label.shape[1] if label is not None else None)
    unet.load_state_dict(unet_sd)
    model = BaseModel(unet, model_type="V_PREDICTION" if "v_pred" in sd else "EPS")
    return ForgeObjects(UnetPatcher(model), None, None, None)
