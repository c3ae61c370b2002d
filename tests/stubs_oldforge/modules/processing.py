"""Stand-in for modules/processing.py of reForge (R:3b56b268) and Forge Classic (C:1f95d717): the
A1111 stand-in's (both forks keep A1111's prompts, cond cache and hooks, and encode the negative
prompt at every CFG, R:560-620, C:501-511) with what they add around sampling:

- before each pass's process_before_every_sampling, `sd_model.forge_objects` is reset from
  `forge_objects_after_applying_lora` (txt2img R:1458 C:1236, hires R:1568 C:1349, img2img R:1913
  C:1664); the hires pass runs the hook once;
- reForge's txt2img has its own hires CFG `hr_cfg` (default 1.0, R:1298), 0 meaning the first pass's
  (calculate_hr_conds R:1640-1650); Forge Classic has none (its hires pass runs at cfg_scale).
"""

from modules import a1111_stand_in, is_classic

_a1111 = a1111_stand_in("processing")
globals().update({k: v for k, v in vars(_a1111).items() if not k.startswith("__") and k not in (
    "StableDiffusionProcessingTxt2Img", "StableDiffusionProcessingImg2Img")})


def _reset_forge_objects(p):
    p.sd_model.forge_objects = p.sd_model.forge_objects_after_applying_lora.shallow_copy()


class StableDiffusionProcessingTxt2Img(_a1111.StableDiffusionProcessingTxt2Img):
    def __init__(self, hr_cfg=1.0, **kwargs):
        super().__init__(**kwargs)
        if not is_classic():
            self.hr_cfg = hr_cfg

    def sample(self, *args, **kwargs):
        _reset_forge_objects(self)
        return super().sample(*args, **kwargs)

    def sample_hr_pass(self, *args, **kwargs):
        _reset_forge_objects(self)
        return super().sample_hr_pass(*args, **kwargs)

    def calculate_hr_conds(self):
        if self.hr_c is None and not is_classic() and self.hr_cfg == 0:
            self.hr_cfg = self.cfg_scale
        super().calculate_hr_conds()


class StableDiffusionProcessingImg2Img(_a1111.StableDiffusionProcessingImg2Img):
    def sample(self, *args, **kwargs):
        _reset_forge_objects(self)
        return super().sample(*args, **kwargs)
