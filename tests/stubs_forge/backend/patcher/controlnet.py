"""Stand-in for backend/patcher/controlnet.py (Forge dfdcbab6), without the advanced weightings and
Control-LoRA / T2I-Adapter loading:

- apply_controlnet_advanced (CN:11-83): a copy of the control model with the unit's hint, strength
  and start/end, put at the head of a clone's controlnet_linked_list;
- ControlBase (CN:175-279): `strength`, the timestep range set by pre_run, the linked list through
  `previous_controlnet` (each node computes the previous ones first), control_merge multiplying
  the node's control by its strength and adding the previous nodes';
- ControlNet.get_control (CN:292-339): nothing outside the timestep range, the hint resized to the
  latent, the control model called on the model's input.

The stand-in script's control model (backend/nn/cnets/cldm.ControlNet) is tests/tiny_control.py's
TinyControlNet, with two outputs: an output block's and the middle block's. For the tests, every batch the sampling
function runs appends a dict to CALLS (CURRENT during the batch), where each node that ran adds
its strength under "controlnet" (in unit order) and IP-Adapter patches their weights under
"ip-adapter"; nothing in W2SD reads them.
"""

import torch

from backend import memory_management
from backend.patcher.base import ModelPatcher

CALLS = []
CURRENT = {}


def new_batch_log():
    global CURRENT
    CURRENT = {}
    CALLS.append(CURRENT)


def apply_controlnet_advanced(unet, controlnet, image_bchw, strength, start_percent, end_percent, **advanced):
    cnet = controlnet.copy().set_cond_hint(image_bchw, strength, (start_percent, end_percent))
    m = unet.clone()
    m.add_patched_controlnet(cnet)
    return m


class ControlBase:
    def __init__(self, device=None):
        self.cond_hint_original = None
        self.cond_hint = None
        self.strength = 1.0
        self.timestep_percent_range = (0.0, 1.0)
        self.global_average_pooling = False
        self.timestep_range = None
        self.transformer_options = {}
        self.device = device if device is not None else memory_management.get_torch_device()
        self.previous_controlnet = None

    def set_cond_hint(self, cond_hint, strength=1.0, timestep_percent_range=(0.0, 1.0)):
        self.cond_hint_original = cond_hint
        self.strength = strength
        self.timestep_percent_range = timestep_percent_range
        return self

    def pre_run(self, model, percent_to_timestep_function):
        self.timestep_range = (percent_to_timestep_function(self.timestep_percent_range[0]),
                               percent_to_timestep_function(self.timestep_percent_range[1]))
        if self.previous_controlnet is not None:
            self.previous_controlnet.pre_run(model, percent_to_timestep_function)

    def set_previous_controlnet(self, controlnet):
        self.previous_controlnet = controlnet
        return self

    def cleanup(self):
        if self.previous_controlnet is not None:
            self.previous_controlnet.cleanup()
        self.cond_hint = None
        self.timestep_range = None

    def get_models(self):
        return self.previous_controlnet.get_models() if self.previous_controlnet is not None else []

    def copy_to(self, c):
        c.cond_hint_original = self.cond_hint_original
        c.strength = self.strength
        c.timestep_percent_range = self.timestep_percent_range
        c.global_average_pooling = self.global_average_pooling

    def inference_memory_requirements(self, dtype):
        return 0

    def control_merge(self, control_input, control_output, control_prev, output_dtype):
        out = {"input": [], "middle": [], "output": []}
        for i, x in enumerate(control_output):
            key = "middle" if i == len(control_output) - 1 else "output"
            if x is not None:
                x *= self.strength
            out[key].append(x)
        CURRENT.setdefault("controlnet", []).append(self.strength)
        if control_prev is not None:
            for key in ("input", "middle", "output"):
                o = out[key]
                for i, prev_val in enumerate(control_prev[key]):
                    if i >= len(o):
                        o.append(prev_val)
                    elif prev_val is not None:
                        o[i] = prev_val if o[i] is None else o[i] + prev_val
        return out


class ControlNet(ControlBase):
    def __init__(self, control_model, global_average_pooling=False, device=None, load_device=None,
                 manual_cast_dtype=None):
        super().__init__(device)
        self.control_model = control_model
        self.load_device = load_device if load_device is not None else memory_management.get_torch_device()
        self.control_model_wrapped = ModelPatcher(self.control_model, load_device=self.load_device,
                                                  offload_device=memory_management.unet_offload_device())
        self.global_average_pooling = global_average_pooling
        self.model_sampling_current = None
        self.manual_cast_dtype = manual_cast_dtype

    def get_control(self, x_noisy, t, cond, batched_number):
        control_prev = None
        if self.previous_controlnet is not None:
            control_prev = self.previous_controlnet.get_control(x_noisy, t, cond, batched_number)
        if self.timestep_range is not None:
            if t[0] > self.timestep_range[0] or t[0] < self.timestep_range[1]:
                return control_prev
        if self.cond_hint is None or self.cond_hint.shape[2:] != x_noisy.shape[2:]:
            self.cond_hint = torch.nn.functional.adaptive_avg_pool2d(self.cond_hint_original, x_noisy.shape[2:])
        timestep = self.model_sampling_current.timestep(t)
        x_noisy = self.model_sampling_current.calculate_input(t, x_noisy)
        control = self.control_model(x=x_noisy, hint=self.cond_hint, timesteps=timestep.float(),
                                     context=cond["c_crossattn"], y=cond.get("y"))
        return self.control_merge(None, control, control_prev, x_noisy.dtype)

    def copy(self):
        c = ControlNet(self.control_model, global_average_pooling=self.global_average_pooling,
                       load_device=self.load_device, manual_cast_dtype=self.manual_cast_dtype)
        self.copy_to(c)
        return c

    def get_models(self):
        return super().get_models() + [self.control_model_wrapped]

    def pre_run(self, model, percent_to_timestep_function):
        super().pre_run(model, percent_to_timestep_function)
        self.model_sampling_current = model.predictor

    def cleanup(self):
        self.model_sampling_current = None
        super().cleanup()
