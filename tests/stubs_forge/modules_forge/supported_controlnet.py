"""Stand-in for modules_forge/supported_controlnet.py (Forge dfdcbab6): ControlModelPatcher, the
unit parameters the ControlNet script sets before each pass (SC:13-36), and ControlNetPatcher,
which puts its control model at the head of the UNet patcher's linked list through
apply_controlnet_advanced and makes that clone `forge_objects.unet` (SC:145-166)."""

from backend.patcher.controlnet import apply_controlnet_advanced


class ControlModelPatcher:
    def __init__(self, model_patcher=None):
        self.model_patcher = model_patcher
        self.strength = 1.0
        self.start_percent = 0.0
        self.end_percent = 1.0
        self.positive_advanced_weighting = None
        self.negative_advanced_weighting = None
        self.advanced_frame_weighting = None
        self.advanced_sigma_weighting = None
        self.advanced_mask_weighting = None

    def process_before_every_sampling(self, process, cond, mask, *args, **kwargs):
        return


class ControlNetPatcher(ControlModelPatcher):
    def process_before_every_sampling(self, process, cond, mask, *args, **kwargs):
        unet = process.sd_model.forge_objects.unet
        unet = apply_controlnet_advanced(unet=unet, controlnet=self.model_patcher, image_bchw=cond,
                                         strength=self.strength, start_percent=self.start_percent,
                                         end_percent=self.end_percent)
        process.sd_model.forge_objects.unet = unet
