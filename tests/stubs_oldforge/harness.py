"""A reForge / Forge Classic WebUI in a box for tests: the A1111 stand-in's harness
(tests/stubs/harness.py: TinySD, scripts/w2sd.py loaded, generate() running process_images like
the API does) on this stand-in's `modules`, with the loaded model carrying `forge_objects` as the
forks' forge_loader gives it (modules_forge/forge_loader.py: C:1f95d717 177-191): a UnetPatcher
over ldm_patched's BaseModel of the model's own UNet, copied to forge_objects_original and
forge_objects_after_applying_lora. `WebUI(fork)` plays reForge ("reforge") or Forge Classic
("forge_classic"). Same interface as the other harnesses (tests/conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile

import forge_networks
import torch
from ldm_patched.modules import lora, model_management
from ldm_patched.modules.model_base import BaseModel
from webui_patterns import reflected_pattern
from modules_forge import forge_version
from modules_forge import forge_loader
from modules_forge.forge_loader import ForgeObjects
from modules_forge.unet_patcher import UnetPatcher

from modules import extra_networks, shared

VERSIONS = {"reforge": "1.0.0v2-v1.10.1RC", "forge_classic": "classic"}  # their forge_version.py
_STUBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stubs")
# The A1111 stand-in's modules the A1111 harness imports besides `modules` (dropped with this stand-in).
BORROWED = ("a1111_harness", "tiny_sd", "networks", "controlnet_ext")


def _a1111_harness():
    sys.path.append(_STUBS)  # tiny_sd, the Lora stand-in its layers use, sd-webui-controlnet's stand-in
    try:
        spec = importlib.util.spec_from_file_location("a1111_harness", os.path.join(_STUBS, "harness.py"))
        sys.modules["a1111_harness"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(_STUBS)


_a1111 = _a1111_harness()
REFORGE_CALCULATE_WEIGHT = lora.calculate_weight  # reForge's lora.calculate_weight; Classic has none
SCRIPT, DEFAULTS, Call, Result, write_checkpoint = (_a1111.SCRIPT, _a1111.DEFAULTS, _a1111.Call, _a1111.Result,
                                                   _a1111.write_checkpoint)
TinySD = _a1111.tiny_sd.TinySD
forge_loader.unet_class = _a1111.tiny_sd.TinyUNet


def attach_forge_objects(sd_model):
    """What forge_loader hands the WebUI: forge_objects over the model's own UNet, no LoRA applied."""
    unet = UnetPatcher(BaseModel(sd_model.model.diffusion_model, sd_model.alphas_cumprod))
    sd_model.forge_objects = ForgeObjects(unet)
    sd_model.forge_objects_original = sd_model.forge_objects.shallow_copy()
    sd_model.forge_objects_after_applying_lora = sd_model.forge_objects.shallow_copy()
    sd_model.current_lora_hash = str([])
    return sd_model


def write_lora(path, unet, seed=3, scale=0.3, rank=2, dora=False):
    """A kohya LoRA file on every Linear / Conv2d of `unet` (lora_unet_<layer>.lora_up/down.weight, .alpha)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, layer in unet.named_modules():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            out_features, *rest = layer.weight.shape
            key = "lora_unet_" + name.replace(".", "_")
            tensors[f"{key}.lora_up.weight"] = torch.randn(out_features, rank, generator=g) * scale
            down = torch.randn(rank, *rest, generator=g) * scale
            tensors[f"{key}.lora_down.weight"] = down
            tensors[f"{key}.alpha"] = torch.tensor(float(rank))
            if dora:
                tensors[f"{key}.dora_scale"] = torch.ones(out_features, *[1] * len(rest))
    save_file(tensors, str(path))
    return str(path)


class WebUI(_a1111.WebUI):
    def __init__(self, fork="reforge"):
        self.fork = fork
        super().__init__()

    def reset(self):
        from lib_w2sd.webui.adapters import old_forge_unet

        forge_version.version = VERSIONS[self.fork]
        if self.fork == "reforge":
            lora.calculate_weight = REFORGE_CALCULATE_WEIGHT
        elif hasattr(lora, "calculate_weight"):
            del lora.calculate_weight
        old_forge_unet.cache.clear()
        model_management.unload_all_models()  # a LoRA merged into the UNet goes back to its backup
        super().reset()
        attach_forge_objects(self.model)
        extra_networks.extra_network_registry.clear()
        extra_networks.register_extra_network(forge_networks.ExtraNetworkLora())
        forge_networks.available_networks.clear()
        self.models_dir = None

    def add_checkpoint(self, filename, seed=5, v_pred=False, **model):
        """`filename` in the models folder (a TinySD of `model`'s kind, or pickled bytes for .ckpt),
        the folder listed as the WebUI's checkpoint list."""
        from safetensors.torch import load_file, save_file

        self.models_dir = getattr(self, "models_dir", None) or tempfile.mkdtemp(prefix="w2sd-oldforge-models-")
        path = os.path.join(self.models_dir, filename)
        if filename.endswith(".safetensors"):
            write_checkpoint(path, TinySD(seed=seed, **model).unet)
            if v_pred:
                save_file({**load_file(path), "v_pred": torch.zeros(())}, path)
        else:
            with open(path, "wb") as file:
                file.write(b"pickled data W2SD must never load")
        self.register_checkpoints(self.models_dir)
        return path

    def weak_unet(self):
        """The weak checkpoint's UNet W2SD holds (None: none)."""
        from lib_w2sd.webui.adapters import old_forge_unet

        entry = old_forge_unet.cache.entry
        return entry.patcher.model.diffusion_model if entry is not None else None

    def add_lora(self, name="style", directory=None, **kwargs):
        """<lora:name:...> in the fork's Lora extension: a file for the loaded model's UNet."""
        path = os.path.join(directory or tempfile.mkdtemp(prefix="w2sd-oldforge-"), f"{name}.safetensors")
        forge_networks.available_networks[name] = write_lora(path, shared.sd_model.model.diffusion_model, **kwargs)
        return forge_networks.available_networks[name]

    def load(self, sd_model):
        """Make `sd_model` (a tiny_sd.TinySD) the loaded model."""
        shared.sd_model = attach_forge_objects(sd_model)
        return sd_model

    def reflected_pattern(self, steps, reflected, strong_rows, weak_rows, normal_rows, batch=1):
        """webui_patterns.reflected_pattern as this fork batches it: Forge Classic runs every call of
        the first step at CFG 1 (C:modules/sd_samplers_cfg_denoiser.py:126-127), without its uncond rows."""
        pattern = reflected_pattern(steps, reflected, strong_rows, weak_rows, normal_rows)
        if self.fork != "forge_classic":
            return pattern
        first = (reflected > 0) * (1 + (weak_rows is not None)) + 1
        return [(role, rows - batch if i < first and rows > batch else rows) for i, (role, rows) in enumerate(pattern)]
