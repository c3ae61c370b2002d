"""Stand-in for ldm_patched/modules/model_patcher.py (C:1f95d717 ModelPatcher 15-540; reForge's,
R:3b56b268, keeps the same API): the model, its model_options (transformer_options, the CFG functions
and their disable_cfg1_optimization flag), clone (the patch lists copied, C:50-66), add_patches
(C:191-200: (strength_patch, value, strength_model) per weight key), patch_model (C:225-269: each
patched weight backed up, then REPLACED by calculate_weight of its patches), unpatch_model
(C:530-540: the backups put back), calculate_weight (C:271-; in reForge a deprecated shim over
lora.calculate_weight, R:868-870)."""

import copy
import logging

import torch

from . import lora


class ModelPatcher:
    def __init__(self, model, load_device="cpu", offload_device="cpu", size=0, current_device="cpu"):
        self.model = model
        self.size = size
        self.patches = {}
        self.backup = {}
        self.model_options = {"transformer_options": {}}
        self.model_keys = set(model.state_dict().keys())
        self.load_device, self.offload_device = load_device, offload_device
        self.current_device = current_device

    def clone(self):
        n = self.__class__(self.model, self.load_device, self.offload_device, self.size, self.current_device)
        n.patches = {k: v[:] for k, v in self.patches.items()}
        n.model_options = copy.deepcopy(self.model_options)
        return n

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def memory_required(self, input_shape):
        return self.model.memory_required(input_shape=input_shape)

    def model_dtype(self):
        return next(self.model.parameters()).dtype

    def set_model_sampler_cfg_function(self, sampler_cfg_function, disable_cfg1_optimization=False):
        self.model_options["sampler_cfg_function"] = sampler_cfg_function
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def set_model_unet_function_wrapper(self, unet_wrapper_function):
        self.model_options["model_function_wrapper"] = unet_wrapper_function

    def add_patches(self, patches, strength_patch=1.0, strength_model=1.0):
        p = set()
        for k in patches:
            if k in self.model_keys:
                p.add(k)
                self.patches.setdefault(k, []).append((strength_patch, patches[k], strength_model))
        return list(p)

    def model_size(self):
        from ldm_patched.modules.model_management import module_size

        return module_size(self.model)

    def patch_model(self, device_to=None, patch_weights=True):
        if device_to is not None:
            self.model.to(device_to)
            self.current_device = device_to
        model_sd = self.model.state_dict()
        for key in self.patches:
            weight = model_sd[key]
            if key not in self.backup:
                self.backup[key] = weight
            # reForge merges with lora.calculate_weight itself (R:patch_weight_to_device 559-590)
            out_weight = lora.merge(self.patches[key], weight.to(torch.float32, copy=True), key)
            _set_attr(self.model, key, out_weight.to(weight.dtype))
        return self.model

    def unpatch_model(self, device_to=None):
        for key, weight in self.backup.items():
            _set_attr(self.model, key, weight)
        self.backup = {}
        if device_to is not None:
            self.model.to(device_to)
            self.current_device = device_to

    def calculate_weight(self, patches, weight, key):
        """Classic's merge (C:271-); reForge keeps the method only as a shim that logs a deprecation
        warning on every call and hands over to lora.calculate_weight (R:868-870)."""
        if hasattr(lora, "calculate_weight"):
            logging.warning("The ModelPatcher.calculate_weight function is deprecated, please use: "
                            "ldm_patched.modules.lora.calculate_weight instead")
        return lora.merge(patches, weight, key)


def _set_attr(model, key, value):
    """ldm_patched/modules/utils.py set_attr: the module's parameter replaced by a new one."""
    *path, name = key.split(".")
    module = model
    for part in path:
        module = getattr(module, part)
    setattr(module, name, torch.nn.Parameter(value, requires_grad=False) if not isinstance(value, torch.nn.Parameter)
            else value)
