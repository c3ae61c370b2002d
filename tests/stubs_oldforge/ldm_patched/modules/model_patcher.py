"""Stand-in for ldm_patched/modules/model_patcher.py (C:1f95d717 ModelPatcher 15-100, R:3b56b268):
the model, its model_options (transformer_options, the CFG functions and their
disable_cfg1_optimization flag), clone, memory_required."""

import copy


class ModelPatcher:
    def __init__(self, model, load_device=None, offload_device=None, size=0, current_device=None):
        self.model = model
        self.size = size
        self.patches = {}
        self.model_options = {"transformer_options": {}}
        self.load_device, self.offload_device = load_device, offload_device
        self.current_device = current_device

    def clone(self):
        n = self.__class__(self.model, self.load_device, self.offload_device, self.size, self.current_device)
        n.patches = {k: v[:] for k, v in self.patches.items()}
        n.model_options = copy.deepcopy(self.model_options)
        return n

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
