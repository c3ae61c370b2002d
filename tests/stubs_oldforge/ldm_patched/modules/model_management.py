"""Stand-in for ldm_patched/modules/model_management.py (C:1f95d717, R:3b56b268): the free memory
the samplers batch by, and load_models_gpu (C:469-): a patcher not loaded yet first unloads the
loaded clones of its model (unload_model_clones C:432-443, which unpatch: the weights come back
from their backups), then is loaded with its patches merged into the weights (LoadedModel.model_load
-> ModelPatcher.patch_model, C:346-359)."""

current_loaded_models = []  # the loaded UNet patchers (the real list holds LoadedModel wrappers)


def get_free_memory(dev=None, torch_free_too=False):
    return 1 << 40


def unload_model_clones(model):
    for loaded in [m for m in current_loaded_models if m is not model and model.is_clone(m)]:
        current_loaded_models.remove(loaded)
        loaded.unpatch_model()


def load_models_gpu(models, memory_required=0):
    for model in models:
        if any(loaded is model for loaded in current_loaded_models):
            continue
        unload_model_clones(model)
        model.patch_model()
        current_loaded_models.append(model)


def unload_all_models():
    while current_loaded_models:
        current_loaded_models.pop().unpatch_model()
