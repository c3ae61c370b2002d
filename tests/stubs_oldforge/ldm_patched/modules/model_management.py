"""Stand-in for ldm_patched/modules/model_management.py (C:1f95d717, R:3b56b268): the free memory
the samplers batch by, LoadedModel (C:333-422: equal when they hold the same patcher; model_unload
unpatches and moves the model to its offload device) and load_models_gpu (C:469-): a patcher not
loaded yet first unloads the loaded clones of its model (unload_model_clones C:425-436, whose
weights come back from their backups), then is loaded with its patches merged into the weights
(LoadedModel.model_load -> ModelPatcher.patch_model, C:346-359)."""

current_loaded_models = []  # LoadedModel, the last loaded first


def get_free_memory(dev=None, torch_free_too=False):
    return 1 << 40


def module_size(module):
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


class LoadedModel:
    def __init__(self, model, memory_required=0):
        self.model = model
        self.memory_required = memory_required

    def model_load(self):
        self.model.patch_model(device_to=self.model.load_device)
        return self.model.model

    def model_unload(self, avoid_model_moving=False):
        self.model.unpatch_model(None if avoid_model_moving else self.model.offload_device)

    def __eq__(self, other):
        return self.model is other.model


def unload_model_clones(model):
    for loaded in [m for m in current_loaded_models if m.model is not model and model.is_clone(m.model)]:
        current_loaded_models.remove(loaded)
        loaded.model_unload(avoid_model_moving=True)


def load_models_gpu(models, memory_required=0):
    for model in models:
        loaded = LoadedModel(model, memory_required)
        if loaded in current_loaded_models:
            current_loaded_models.insert(0, current_loaded_models.pop(current_loaded_models.index(loaded)))
            continue
        unload_model_clones(model)
        loaded.model_load()
        current_loaded_models.insert(0, loaded)


def unload_all_models():
    while current_loaded_models:
        current_loaded_models.pop().model_unload()
