"""Stand-in for Forge's modules/prompt_parser.py (dfdcbab6): the A1111 stand-in's, with Forge's
SdConditioning that also carries `distilled_cfg_scale` (prompt_parser.py:139-155)."""

from modules import a1111_stand_in, reexport

reexport(a1111_stand_in("prompt_parser"), globals())


class SdConditioning(list):
    def __init__(self, prompts, is_negative_prompt=False, width=None, height=None, copy_from=None,
                 distilled_cfg_scale=None):
        super().__init__()
        self.extend(prompts)
        if copy_from is None:
            copy_from = prompts
        self.is_negative_prompt = is_negative_prompt or getattr(copy_from, "is_negative_prompt", False)
        self.width = width or getattr(copy_from, "width", None)
        self.height = height or getattr(copy_from, "height", None)
        self.distilled_cfg_scale = distilled_cfg_scale or getattr(copy_from, "distilled_cfg_scale", None)
