"""Stand-in for extensions-builtin/sd_forge_controlnet/scripts/controlnet.py (Forge dfdcbab6): the
always-on ControlNetForForgeOfficial. process() keeps the enabled units (CN:547-557); before every
sampling pass each unit sets its model's strength and start/end and applies itself to
`forge_objects.unet`, unless its hires-fix option leaves this pass out (CN:425-510, 559-563).

Its script arg is a list of units, dicts with the API's names: model ("tiny-controlnet" or
"tiny-ip-adapter"), weight, guidance_start, guidance_end, hr_option ("Both", "Low res only",
"High res only"), enabled. The control image is a fixed gradient of the pass's size (the "none"
preprocessor). Each unit index has its own model, as the real script's cached loader gives.
"""

import torch
from backend.patcher.controlnet import ControlNet
from tiny_control import TinyControlNet

from modules import scripts
from modules_forge.supported_controlnet import ControlNetPatcher

from .ipadapter import IPAdapterPatcher


def control_image(h, w):
    return torch.linspace(0, 1, 3 * h * w).reshape(1, 3, h, w)


class ControlNetForForgeOfficial(scripts.Script):
    sorting_priority = 10

    def __init__(self):
        super().__init__()
        self.enabled = []
        self.models = {}

    def title(self):
        return "ControlNet"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def model_for(self, index, name):
        if (index, name) not in self.models:
            self.models[index, name] = (ControlNetPatcher(ControlNet(TinyControlNet(seed=5 + index)))
                                        if name == "tiny-controlnet" else IPAdapterPatcher(seed=7 + index))
        return self.models[index, name]

    def process(self, p, *args):
        units = (args[0] if args else None) or []
        self.enabled = [unit for unit in units if unit.get("enabled", True)]

    def process_before_every_sampling(self, p, *args, **kwargs):
        is_hr_pass = getattr(p, "is_hr_pass", False)
        has_high_res_fix = getattr(p, "enable_hr", False)
        for index, unit in enumerate(self.enabled):
            hr_option = unit.get("hr_option", "Both") if has_high_res_fix else "Both"
            if is_hr_pass and hr_option == "Low res only" or not is_hr_pass and hr_option == "High res only":
                continue
            model = self.model_for(index, unit["model"])
            model.strength = float(unit.get("weight", 1.0))
            model.start_percent = float(unit.get("guidance_start", 0.0))
            model.end_percent = float(unit.get("guidance_end", 1.0))
            w, h = (p.hr_upscale_to_x, p.hr_upscale_to_y) if is_hr_pass else (p.width, p.height)
            model.process_before_every_sampling(p, control_image(h, w), None)

    def postprocess(self, p, processed, *args):
        self.enabled = []

    def control_calls(self):
        """Evaluations of every unit's control model (batch sizes), for the tests."""
        return [rows for model in self.models.values() if isinstance(model, ControlNetPatcher)
                for rows in model.model_patcher.control_model.calls]
