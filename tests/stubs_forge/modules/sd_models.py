"""Stand-in for Forge's modules/sd_models.py (dfdcbab6): the A1111 stand-in's checkpoint list,
CheckpointInfo with calculate_shorthash (sd_models.py:113-134: sha256 of the file), and Forge's
model_data / forge_model_reload (sd_models.py:473-520: loads the checkpoint named by
model_data.forge_loading_parameters['checkpoint_info'] with backend.loader.forge_loader when it
changed, unloading every model first)."""

import hashlib

from backend import memory_management
from backend.loader import forge_loader

from modules import a1111_stand_in, reexport, shared

reexport(a1111_stand_in("sd_models"), globals())


class CheckpointInfo(CheckpointInfo):  # noqa: F821 (re-exported above)
    def calculate_shorthash(self):
        if self.sha256 is None:
            with open(self.filename, "rb") as file:
                self.sha256 = hashlib.sha256(file.read()).hexdigest()
            self.shorthash = self.sha256[0:10]
            self.ids += [self.shorthash, self.sha256, f"{self.name} [{self.shorthash}]"]
            self.register()
        return self.shorthash


class FakeInitialModel:
    """shared.sd_model until the first generation loads a checkpoint (sd_models.py:385-397)."""

    def __init__(self):
        self.cond_stage_model = None
        self.chunk_length = 75


class SdModelData:
    def __init__(self):
        self.forge_loading_parameters = {}
        self.forge_hash = ""

    def get_sd_model(self):
        return shared.sd_model

    def set_sd_model(self, v):
        shared.sd_model = v


model_data = SdModelData()


def forge_model_reload():
    current_hash = str(model_data.forge_loading_parameters)
    if model_data.forge_hash == current_hash:
        return shared.sd_model, False
    if shared.sd_model is not None:
        shared.sd_model = None
        memory_management.unload_all_models()
    checkpoint_info = model_data.forge_loading_parameters["checkpoint_info"]
    sd_model = forge_loader(checkpoint_info.filename)
    sd_model.sd_checkpoint_info = checkpoint_info
    sd_model.filename = checkpoint_info.filename
    sd_model.sd_model_hash = checkpoint_info.calculate_shorthash()
    model_data.set_sd_model(sd_model)
    model_data.forge_hash = current_hash
    return sd_model, True
