"""The weak checkpoint's UNet on Forge: read with Forge's own loader, UNet only, checked against
the loaded model's architecture, cached by file and hash, loaded beside the strong UNet by
Forge's memory manager, released per the memory policy.

Forge's `forge_loader` (backend/loader.py:497-576) builds a whole engine (text encoders, VAE,
UNet). W2SD calls the same steps for the UNet alone: `split_state_dict` (loader.py:449-483, the
architecture guess), `load_huggingface_component` for the UNet and its scheduler (loader.py:
35-178, honouring Forge's UNet storage dtype setting), forge_loader's prediction-type rule
(loader.py:543-567), then `UnetPatcher.from_model` as the SD1.5/SD2/SDXL engines do
(diffusion_engine/sd15.py:33-37). Only UNet models (not Flux/SD3 transformers, whose predictors
the engines build themselves) are accepted.

A weak call runs through the pass's own CFG denoiser with `forge_objects.unet` pointed at a
patcher over the weak KModel that carries the strong patcher's model options, ControlNet list and
concat condition (so ControlNet and other extensions' UNet hooks apply), but not its LoRA or object
patches: the weak checkpoint runs as the file has it, as on AUTOMATIC1111.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Optional

from .checkpoint import CheckpointError, check_safetensors

_PREDICTION_TYPES = {"EPS": "epsilon", "V_PREDICTION": "v_prediction", "EDM": "edm"}  # loader.py:544-548


@dataclass
class WeakUNet:
    """A handle: the weak checkpoint's UNet patcher and what it was made from."""

    name: str
    key: tuple
    patcher: object  # backend.patcher.unet.UnetPatcher over the weak KModel
    bytes: int  # parameter memory of the weak UNet


def _architecture(config) -> str:
    unet = config.unet_config
    return (f"{type(config).__name__} (in_channels {unet.get('in_channels')}, context_dim "
            f"{unet.get('context_dim')}, {getattr(getattr(config, 'model_type', None), 'name', '?')})")


def architecture_difference(strong_config, weak_config) -> Optional[str]:
    """None when the weak checkpoint's guessed config matches the loaded model's, else what differs."""
    same = (type(weak_config).__name__ == type(strong_config).__name__
            and weak_config.unet_config == strong_config.unet_config
            and getattr(weak_config, "model_type", None) == getattr(strong_config, "model_type", None))
    if same:
        return None
    return f"it is {_architecture(weak_config)}, the loaded model is {_architecture(strong_config)}"


def load_unet_patcher(name: str, filename: str, strong_config):
    """The UNet of `filename` as a Forge UnetPatcher, through Forge's loader functions."""
    from backend import loader
    from backend.patcher.unet import UnetPatcher
    from diffusers import DiffusionPipeline

    check_safetensors(name, filename)  # Forge's load_torch_file would unpickle anything else
    state_dicts, guess = loader.split_state_dict(filename)
    difference = architecture_difference(strong_config, guess)
    if difference:
        raise CheckpointError(f"weak_checkpoint {name!r} does not fit the loaded model: {difference}; "
                              "pick a checkpoint of the same architecture")
    if getattr(guess, "unet_target", "unet") != "unet":
        raise CheckpointError(f"weak_checkpoint {name!r}: only UNet models (SD1.5, SD2, SDXL) can be a weak "
                              "checkpoint on Forge")
    repo = os.path.join(os.path.dirname(loader.__file__), "huggingface", guess.huggingface_repo)
    config = DiffusionPipeline.load_config(repo)
    unet = loader.load_huggingface_component(guess, "unet", *config["unet"], repo, state_dicts.pop("unet"))
    state_dicts.clear()  # the text encoders and VAE of the file are not kept
    scheduler = loader.load_huggingface_component(guess, "scheduler", *config["scheduler"], repo, None)
    scheduler.config.prediction_type = _PREDICTION_TYPES.get(guess.model_type.name, scheduler.config.prediction_type)
    return UnetPatcher.from_model(model=unet, diffusers_scheduler=scheduler, config=guess)


def call_patcher(weak: WeakUNet, strong_patcher):
    """The patcher a weak call runs with: the weak KModel under the strong patcher's options."""
    patcher = weak.patcher.clone()
    patcher.model_options = copy.deepcopy(strong_patcher.model_options)
    patcher.controlnet_linked_list = strong_patcher.controlnet_linked_list
    patcher.extra_concat_condition = strong_patcher.extra_concat_condition
    return patcher


class ForgeUNetCache:
    """At most one weak UNet per process, reused while its file, the storage dtype setting and the
    loaded model's architecture stay the same."""

    def __init__(self):
        self.entry: Optional[WeakUNet] = None

    def get(self, name: str, info, sd_model) -> WeakUNet:
        from backend.args import dynamic_args

        strong_config = sd_model.model_config
        key = file_key(name, info) + (str(dynamic_args.get("forge_unet_storage_dtype")),
                                      _architecture(strong_config), repr(strong_config.unet_config))
        if self.entry is not None and self.entry.key == key:
            return self.entry
        self.clear()  # free the old weak UNet before reading the new one
        patcher = load_unet_patcher(name, info.filename, strong_config)
        strong_type = sd_model.forge_objects.unet.model.predictor.prediction_type
        if patcher.model.predictor.prediction_type != strong_type:
            raise CheckpointError(f"weak_checkpoint {name!r} predicts {patcher.model.predictor.prediction_type}, "
                                  f"the loaded model {strong_type}; pick a checkpoint of the same kind")
        self.entry = WeakUNet(name, key, patcher, self.memory_management().module_size(patcher.model))
        return self.entry

    def weak_call(self, weak: WeakUNet, strong_patcher):
        """The patcher of a weak call beside `strong_patcher` (call_patcher), its UNet loaded."""
        self.ensure_loaded(weak, strong_patcher)
        return call_patcher(weak, strong_patcher)

    def ensure_loaded(self, weak: WeakUNet, strong_patcher) -> None:
        """Load the weak UNet to the GPU beside the strong one, in one budget (Forge's idiom for
        extra models, backend/sampling/sampling_function.py:383-387)."""
        self.memory_management().load_models_gpu([strong_patcher, weak.patcher])

    def release(self, policy: str, generation_ended: bool) -> None:
        """After a generation: 'gpu' keeps the weak UNet loaded, 'offload' moves it to the offload
        device, 'unload' frees it. Between passes nothing moves."""
        if self.entry is None or not generation_ended or policy == "gpu":
            return
        self._unload(self.entry)
        if policy == "unload":
            self.entry = None

    def describe(self) -> str:
        if self.entry is None:
            return "empty"
        loaded = any(m.model.model is self.entry.patcher.model for m in self.memory_management().current_loaded_models)
        return f"{self.entry.name} on {self.entry.patcher.current_device}{' (loaded)' if loaded else ''}"

    def clear(self) -> None:
        if self.entry is not None:
            self._unload(self.entry)
        self.entry = None

    @staticmethod
    def memory_management():
        """The WebUI's memory manager (backend/memory_management.py; old_forge_unet's is ldm_patched's)."""
        from backend import memory_management

        return memory_management

    def _unload(self, weak: WeakUNet) -> None:
        """Take the weak UNet out of the WebUI's loaded models, moving it to its offload device."""
        loaded = self.memory_management().current_loaded_models
        for i in reversed(range(len(loaded))):
            if loaded[i].model.model is weak.patcher.model:
                loaded.pop(i).model_unload()
        weak.patcher.model.to(weak.patcher.offload_device)
        weak.patcher.current_device = weak.patcher.offload_device


def file_key(name: str, info) -> tuple:
    """What identifies a weak checkpoint's file for the cache, after checking it is a safetensors
    file: its path, size, mtime and hash (with size and mtime: no re-hashing)."""
    check_safetensors(name, info.filename)
    stat = os.stat(info.filename)
    file_hash = getattr(info, "sha256", None) or info.hash
    return os.path.abspath(info.filename), stat.st_size, stat.st_mtime_ns, file_hash


# The one cache of this process.
cache = ForgeUNetCache()


def release_all() -> None:
    cache.clear()

