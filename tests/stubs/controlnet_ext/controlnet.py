"""Stand-in for scripts/controlnet.py (sd-webui-controlnet 56cec5b2): the always-on Script titled
"ControlNet" whose process() (controlnet_main_entry, controlnet.py:853-1205) builds one
ControlParams per enabled unit, hooks IP-Adapter units into the UNet, then hooks the UNet with a
UnetHook kept on `latest_network` until postprocess (controlnet.py:1248-1299), which restores it.

Its script arg is a list of units, dicts with the API's names: model ("tiny-controlnet" or
"tiny-ip-adapter"), weight, guidance_start, guidance_end, advanced_weighting, hr_option, enabled.
The control image is a fixed gradient of the generation's size (the "none" preprocessor), the
loaded control model (cldm.PlugableControlModel) tests/tiny_control.py's TinyControlNet.
"""

import torch
from tiny_control import TinyControlNet

from modules import scripts

from .enums import ControlModelType, HiResFixOption
from .hook import ControlParams, UnetHook
from .plugable_ipadapter import PlugableIPAdapter, clear_all_ip_adapter


def control_image(p):
    h, w = p.height, p.width
    return torch.linspace(0, 1, 3 * h * w).reshape(1, 3, h, w)


class Script(scripts.Script):
    def __init__(self):
        super().__init__()
        self.latest_network = None
        self.enabled_units = []
        self.models = {"tiny-controlnet": (TinyControlNet(), ControlModelType.ControlNet),
                       "tiny-ip-adapter": (PlugableIPAdapter(), ControlModelType.IPAdapter)}

    def title(self):
        return "ControlNet"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def process(self, p, *args):
        unet = p.sd_model.model.diffusion_model
        if self.latest_network is not None:
            self.latest_network.restore()
        clear_all_ip_adapter()
        units = (args[0] if args else None) or []
        self.enabled_units = [unit for unit in units if unit.get("enabled", True)]
        if not self.enabled_units:
            self.latest_network = None
            return
        high_res_fix = getattr(p, "enable_hr", False)
        forward_params = []
        for unit in self.enabled_units:
            model, control_model_type = self.models[unit["model"]]
            forward_params.append(ControlParams(
                control_model=model, preprocessor={"name": "none"}, hint_cond=control_image(p),
                weight=unit.get("weight", 1.0), guidance_stopped=False,
                start_guidance_percent=unit.get("guidance_start", 0.0),
                stop_guidance_percent=unit.get("guidance_end", 1.0),
                advanced_weighting=unit.get("advanced_weighting"), control_model_type=control_model_type,
                hr_option=HiResFixOption(unit.get("hr_option", "Both")) if high_res_fix else HiResFixOption.BOTH))
        for param in forward_params:
            if param.control_model_type == ControlModelType.IPAdapter:
                weight = param.weight
                if param.advanced_weighting is not None:
                    weight = {i: w for i, w in enumerate(param.advanced_weighting) if w > 0}
                param.control_model.hook(model=unet, preprocessor_outputs=param.hint_cond, weight=weight,
                                         dtype=torch.float32, start=param.start_guidance_percent,
                                         end=param.stop_guidance_percent)
        self.latest_network = UnetHook()
        self.latest_network.hook(model=unet, sd_ldm=p.sd_model, control_params=forward_params, process=p)

    def postprocess(self, p, processed, *args):
        clear_all_ip_adapter()
        if self.latest_network is None:
            return
        self.latest_network.restore()
        self.latest_network = None
