"""Stand-in for backend/memory_management.py (Forge dfdcbab6).

Kept: the list of loaded model patchers (`current_loaded_models`, most recent first),
`load_models_gpu` (patch + LoRA refresh of each newly loaded patcher, MM:614-690),
`unload_model_clones`, the drop of abandoned models in `free_memory`, `module_size`.
Both devices are the CPU here; `load_log` records (event, model class) for tests.
"""

import sys

import torch

cpu = torch.device("cpu")
current_loaded_models = []
load_log = []
signal_empty_cache = False


def get_torch_device():
    return cpu


def unet_offload_device():
    return cpu


def get_free_memory(dev=None, torch_free_too=False):
    return (1 << 40, 1 << 40) if torch_free_too else 1 << 40


def module_size(module, exclude_device=None, include_device=None, return_split=False):
    """MM:356-392: bytes of the module's parameters."""
    total = 0
    for _, p in module.named_parameters():
        if exclude_device is not None and p.device == exclude_device:
            continue
        if include_device is not None and p.device != include_device:
            continue
        total += p.nelement() * p.element_size()
    return total


def cast_to_device(tensor, device, dtype, copy=False):
    return tensor.to(device=device, dtype=dtype, copy=copy)


def dtype_size(dtype):
    return torch.tensor([], dtype=dtype).element_size()


class LoadedModel:
    """MM:443-550; compares by patcher identity (MM:545-546)."""

    def __init__(self, model):
        self.model = model
        self.device = model.load_device

    def model_load(self, model_gpu_memory_when_using_cpu_swap=-1):
        self.real_model = self.model.forge_patch_model(self.device)
        self.model.current_device = self.model.load_device
        self.model.refresh_loras()
        load_log.append(("load", type(self.model.model).__name__))
        return self.real_model

    def model_unload(self, avoid_model_moving=False):
        if avoid_model_moving:
            self.model.forge_unpatch_model()
        else:
            self.model.forge_unpatch_model(self.model.offload_device)
        load_log.append(("unload", type(self.model.model).__name__))

    def __eq__(self, other):
        return self.model is other.model


def unload_model_clones(model):
    """MM:552-559: unload every loaded patcher over the same model, without moving weights."""
    for i in reversed(range(len(current_loaded_models))):
        if model.is_clone(current_loaded_models[i].model):
            current_loaded_models.pop(i).model_unload(avoid_model_moving=True)


def free_memory(memory_required, device, keep_loaded=(), free_all=False):
    """MM:562-566 only: drop models nobody but this list refers to."""
    for i in reversed(range(len(current_loaded_models))):
        if sys.getrefcount(current_loaded_models[i].model) <= 2:
            current_loaded_models.pop(i).model_unload(avoid_model_moving=True)
    if free_all:
        while current_loaded_models:
            current_loaded_models.pop().model_unload()


def load_models_gpu(models, memory_required=0, hard_memory_preservation=0):
    """MM:614-690 without the VRAM arithmetic."""
    free_memory(memory_required, cpu)
    for model in models:
        loaded = LoadedModel(model)
        if loaded in current_loaded_models:
            current_loaded_models.insert(0, current_loaded_models.pop(current_loaded_models.index(loaded)))
            continue
        unload_model_clones(model)
        loaded.model_load()
        current_loaded_models.insert(0, loaded)


def load_model_gpu(model):
    return load_models_gpu([model])


def soft_empty_cache(force=False):
    global signal_empty_cache
    signal_empty_cache = False


def unload_all_models():
    free_memory(1e30, cpu, free_all=True)
