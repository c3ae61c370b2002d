"""The weak checkpoint's UNet on Forge's first backend (reForge main 3b56b268 = R:, Forge Classic
1f95d717 = C:): read UNet-only with the fork's own loader, checked against the loaded model, cached by
file and hash, loaded beside the strong UNet by the fork's memory manager, released per the policy.

- Reading: only the file's 'model.diffusion_model.*' tensors (safetensors, one at a time; pickled
  files are refused before opening), after their shapes were checked against the loaded UNet's
  (checkpoint.architecture_difference). They go to the fork's load_checkpoint_guess_config with
  output_vae / output_clip / output_clipvision off (modules_forge/forge_loader.py C:71-144; R:214-232,
  234-311, returning ForgeSD, R:174),
  which guesses the UNet config from them (model_detection), builds the UNet in the fork's UNet dtype
  and wraps it in a UnetPatcher, as the fork does for its own checkpoint.
- Prediction: the weak model's model_sampling must be of the loaded one's kind (EPS, V prediction,
  ...: the class and its mixins, ldm_patched/modules/model_base.py model_sampling C:30-45) and
  schedule, else the weak call would read the noise levels another way.
- Memory: ldm_patched's model_management.load_models_gpu loads it beside the strong UNet (its idiom for
  extra models, modules_forge/forge_sampler.py sampling_prepare); 'offload' and 'unload' take it out
  of current_loaded_models with LoadedModel.model_unload (C:model_management.py:409-422).
- A weak call runs through the pass's own CFG denoiser with forge_objects.unet pointed at a clone of
  the weak patcher carrying the strong patcher's model options, ControlNet list and image cond (the
  denoisers read forge_objects.unet per call: R:sd_samplers_cfg_denoiser.py:208-211, C:forge_sampler.py
  :55-65), but not its LoRA patches: the weak checkpoint runs as the file has it, as on the other WebUIs.
"""

from __future__ import annotations

import torch

from .checkpoint import UNET_PREFIX, CheckpointError, architecture_difference, unet_shapes
from .forge_unet import ForgeUNetCache, WeakUNet, call_patcher, file_key


def _shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.diffusion_model.state_dict().items()}


def prediction(model) -> tuple:
    """What the model's noise levels mean: the classes model_sampling is made of (its schedule and
    prediction mixins; the class the fork makes of them has the same name for every kind)."""
    return tuple(c.__name__ for c in type(model.model_sampling).__mro__[1:] if c not in (torch.nn.Module, object))


def _same_schedule(a, b) -> bool:
    sa, sb = getattr(a.model_sampling, "sigmas", None), getattr(b.model_sampling, "sigmas", None)
    return sa is None or sb is None or (sa.shape == sb.shape and bool(torch.allclose(sa.cpu(), sb.cpu())))


def load_unet_patcher(name: str, filename: str, strong_patcher):
    """The UNet of `filename` as the fork's UnetPatcher, through its loader, UNet tensors only."""
    from modules_forge import forge_loader
    from safetensors import safe_open

    difference = architecture_difference(_shapes(strong_patcher.model), unet_shapes(filename))
    if difference:
        raise CheckpointError(f"weak_checkpoint {name!r} does not fit the loaded model's UNet: {difference}")
    with safe_open(filename, framework="pt", device="cpu") as f:
        # the UNet, and the top-level marks the fork's model detection reads (v_pred, ztsnr, edm_*)
        keys = [k for k in f.keys() if k.startswith((UNET_PREFIX, "edm_")) or "." not in k]
        state_dict = {k: f.get_tensor(k) for k in keys}
    loaded = forge_loader.load_checkpoint_guess_config(state_dict, output_vae=False, output_clip=False,
                                                       output_clipvision=False, output_model=True)
    state_dict.clear()
    patcher = getattr(loaded, "unet", None)  # ForgeObjects (Classic) / ForgeSD (reForge); else a bare UNet
    if patcher is None:
        raise CheckpointError(f"weak_checkpoint {name!r}: {type(loaded).__name__} from the WebUI's loader holds no "
                              "UNet of a known model type; pick a checkpoint of the loaded model's kind")
    weak, strong = prediction(patcher.model), prediction(strong_patcher.model)
    if weak != strong or not _same_schedule(patcher.model, strong_patcher.model):
        raise CheckpointError(f"weak_checkpoint {name!r} predicts as {' / '.join(weak)}, the loaded model as "
                              f"{' / '.join(strong)} (or their noise schedules differ); pick a checkpoint of "
                              "the same kind")
    return patcher


class OldForgeUNetCache(ForgeUNetCache):
    """forge_unet's cache (one weak UNet per process; the memory policy) on ldm_patched's memory manager,
    reading with the fork's loader."""

    @staticmethod
    def memory_management():
        from ldm_patched.modules import model_management

        return model_management

    def get(self, name: str, info, strong_patcher) -> WeakUNet:
        key = file_key(name, info) + (tuple(sorted(_shapes(strong_patcher.model).items())),
                                      prediction(strong_patcher.model))
        if self.entry is not None and self.entry.key == key:
            return self.entry
        self.clear()  # free the old weak UNet before reading the new one
        patcher = load_unet_patcher(name, info.filename, strong_patcher)
        self.entry = WeakUNet(name, key, patcher, self.memory_management().module_size(patcher.model))
        return self.entry

    def weak_call(self, weak: WeakUNet, strong_patcher):
        """The weak call's patcher, loaded beside the strong one and the models it samples with."""
        patcher = call_patcher(weak, strong_patcher)
        extra = list(strong_patcher.extra_model_patchers_during_sampling)
        if strong_patcher.controlnet_linked_list is not None:
            extra += strong_patcher.controlnet_linked_list.get_models()
        self.memory_management().load_models_gpu([strong_patcher, *extra, patcher])
        return patcher


# The one cache of this process.
cache = OldForgeUNetCache()
