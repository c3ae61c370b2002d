"""Stand-in for backend/patcher/base.py (Forge dfdcbab6): ModelPatcher.

Kept: clones share the model and its single LoraLoader (base.py:63-66) and copy
`lora_patches` / `object_patches` / `model_options` (base.py:79-84); `add_patches` keys LoRA
patches by (filename, strength_patch, strength_model, online_mode) (base.py:91-117);
`refresh_loras`, `has_online_lora`, `forge_patch_model` / `forge_unpatch_model`.
"""

import copy

from backend import memory_management, utils
from backend.patcher.lora import LoraLoader


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, current_device=None, **kwargs):
        self.size = size
        self.model = model
        self.lora_patches = {}
        self.object_patches = {}
        self.object_patches_backup = {}
        self.model_options = {"transformer_options": {}}
        self.model_size()
        self.load_device = load_device
        self.offload_device = offload_device
        if not hasattr(model, "lora_loader"):
            model.lora_loader = LoraLoader(model)
        self.lora_loader = model.lora_loader
        self.current_device = offload_device if current_device is None else current_device

    def model_size(self):
        if self.size > 0:
            return self.size
        self.size = memory_management.module_size(self.model)
        return self.size

    def clone(self):
        n = ModelPatcher(self.model, self.load_device, self.offload_device, self.size, self.current_device)
        n.lora_patches = self.lora_patches.copy()
        n.object_patches = self.object_patches.copy()
        n.model_options = copy.deepcopy(self.model_options)
        return n

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def add_patches(self, *, filename, patches, strength_patch=1.0, strength_model=1.0, online_mode=False):
        lora_identifier = (filename, strength_patch, strength_model, online_mode)
        this_patches, loaded = {}, set()
        model_keys = set(k for k, _ in self.model.named_parameters())
        for key in patches:
            if key in model_keys:
                loaded.add(key)
                this_patches.setdefault(key, []).append([strength_patch, patches[key], strength_model, None, None])
        self.lora_patches[lora_identifier] = this_patches
        return loaded

    def has_online_lora(self):
        return any(online_mode for (_, _, _, online_mode) in self.lora_patches)

    def refresh_loras(self):
        self.lora_loader.refresh(lora_patches=self.lora_patches, offload_device=self.offload_device)

    def memory_required(self, input_shape):
        return self.model.memory_required(input_shape=input_shape)

    def model_dtype(self):
        if hasattr(self.model, "get_dtype"):
            return self.model.get_dtype()

    def model_patches_to(self, device):
        pass

    def set_model_sampler_cfg_function(self, sampler_cfg_function, disable_cfg1_optimization=False):
        self.model_options["sampler_cfg_function"] = sampler_cfg_function
        if disable_cfg1_optimization:
            self.model_options["disable_cfg1_optimization"] = True

    def add_object_patch(self, name, obj):
        self.object_patches[name] = obj

    def forge_patch_model(self, target_device=None):
        for k, item in self.object_patches.items():
            old = utils.get_attr(self.model, k)
            if k not in self.object_patches_backup:
                self.object_patches_backup[k] = old
            utils.set_attr_raw(self.model, k, item)
        if target_device is not None:
            self.model.to(target_device)
            self.current_device = target_device
        return self.model

    def forge_unpatch_model(self, target_device=None):
        if target_device is not None:
            self.model.to(target_device)
            self.current_device = target_device
        for k, v in self.object_patches_backup.items():
            utils.set_attr_raw(self.model, k, v)
        self.object_patches_backup = {}
