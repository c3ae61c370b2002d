"""Stand-in for scripts/hook.py (sd-webui-controlnet 56cec5b2), cut down to tiny_sd's TinyUNet:

- mark_prompt_context / prompt_context_is_marked / unmark_prompt_context (hook.py:36-111): an
  extra first token of +-1024 marks cond and uncond rows; unmark strips it and gives the cond mark
  per row (an unmarked batch reads as all cond rows), and resets the class-level cond caches.
- ControlParams (hook.py:167-240): weight, guidance_stopped, advanced_weighting, hr_option.
- UnetHook.hook (hook.py:449-1065): wraps process.sample so that the conds are marked, replaces
  the UNet's forward by one that on EVERY call walks `control_params` and adds each ControlNet
  unit's control (two residuals here, 13 in SD1.5) times its weight, or its advanced weights,
  unless the unit is guidance_stopped or disabled in this pass by its hires option; registers
  guidance_schedule_handler on cfg_denoiser; restore() undoes it (hook.py:1067-1074). The real one
  tells the hires pass by the hint's size; here by p.is_hr_pass.
CALLS records, per hooked UNet call, {unit index: weights used} (IP-Adapter units add "ip-adapter":
[weights]) for the tests; nothing in W2SD reads it.
"""

import torch

from modules import script_callbacks
from modules.prompt_parser import (
    ComposableScheduledPromptConditioning,
    MulticondLearnedConditioning,
    ScheduledPromptConditioning,
)

from .enums import HiResFixOption

POSITIVE_MARK_TOKEN = 1024
NEGATIVE_MARK_TOKEN = -POSITIVE_MARK_TOKEN
MARK_EPS = 1e-3
CALLS = []


def prompt_context_is_marked(x):
    t = x[..., 0, :]
    m = torch.abs(t) - POSITIVE_MARK_TOKEN
    return float(torch.mean(torch.abs(m))) < MARK_EPS


def mark_prompt_context(x, positive):
    if isinstance(x, list):
        for i in range(len(x)):
            x[i] = mark_prompt_context(x[i], positive)
        return x
    if isinstance(x, MulticondLearnedConditioning):
        x.batch = mark_prompt_context(x.batch, positive)
        return x
    if isinstance(x, ComposableScheduledPromptConditioning):
        x.schedules = mark_prompt_context(x.schedules, positive)
        return x
    if isinstance(x, ScheduledPromptConditioning):
        cond = x.cond["crossattn"] if isinstance(x.cond, dict) else x.cond
        if prompt_context_is_marked(cond):
            return x
        mark = POSITIVE_MARK_TOKEN if positive else NEGATIVE_MARK_TOKEN
        cond = torch.cat([torch.zeros_like(cond)[:1] + mark, cond], dim=0)
        if isinstance(x.cond, dict):
            cond = dict(crossattn=cond, vector=x.cond["vector"])
        return ScheduledPromptConditioning(end_at_step=x.end_at_step, cond=cond)
    return x


def unmark_prompt_context(x):
    if not prompt_context_is_marked(x):
        mark_batch = torch.ones(size=(x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device)
        return mark_batch, [], [], x
    mark = x[:, 0, :]
    context = x[:, 1:, :]
    mark = torch.mean(torch.abs(mark - NEGATIVE_MARK_TOKEN), dim=1)
    mark = (mark > MARK_EPS).float()
    mark_batch = mark[:, None, None, None].to(x.dtype).to(x.device)
    mark = mark.tolist()
    uc_indices = [i for i, item in enumerate(mark) if item < 0.5]
    c_indices = [i for i, item in enumerate(mark) if not item < 0.5]

    from modules.processing import StableDiffusionProcessing

    StableDiffusionProcessing.cached_c = [None, None]
    StableDiffusionProcessing.cached_uc = [None, None]
    return mark_batch, uc_indices, c_indices, context


class ControlParams:
    def __init__(self, control_model, preprocessor, hint_cond, weight, guidance_stopped, start_guidance_percent,
                 stop_guidance_percent, advanced_weighting, control_model_type, hr_hint_cond=None,
                 hr_option=HiResFixOption.BOTH, **kwargs):
        self.control_model = control_model
        self.preprocessor = preprocessor
        self.hint_cond = hint_cond
        self.weight = weight
        self.guidance_stopped = guidance_stopped
        self.start_guidance_percent = start_guidance_percent
        self.stop_guidance_percent = stop_guidance_percent
        self.advanced_weighting = advanced_weighting
        self.control_model_type = control_model_type
        self.hr_hint_cond = hr_hint_cond
        self.hr_option = hr_option

    def disabled_by_hr_option(self, is_in_high_res_fix: bool) -> bool:
        if self.hr_option == HiResFixOption.BOTH:
            return False
        if self.hr_option == HiResFixOption.LOW_RES_ONLY:
            return is_in_high_res_fix
        return not is_in_high_res_fix


def aligned_adding(base, x):
    if isinstance(x, float):
        return base if x == 0.0 else base + x
    return base + x


class UnetHook(torch.nn.Module):
    def __init__(self, lowvram=False):
        super().__init__()
        self.model = None
        self.control_params = None
        self.is_in_high_res_fix = False

    def guidance_schedule_handler(self, x):
        if not self.control_params:
            return
        for param in self.control_params:
            current_sampling_percent = x.sampling_step / x.total_sampling_steps
            param.guidance_stopped = (current_sampling_percent < param.start_guidance_percent
                                      or current_sampling_percent > param.stop_guidance_percent)
            if self.model is not None:
                self.model.current_sampling_percent = current_sampling_percent

    def hook(self, model, sd_ldm, control_params, process, batch_option_uint_separate=False,
             batch_option_style_align=False):
        self.model = model
        self.sd_ldm = sd_ldm
        self.control_params = control_params
        outer = self

        def process_sample(*args, **kwargs):
            mark_prompt_context(kwargs.get("conditioning", []), positive=True)
            mark_prompt_context(kwargs.get("unconditional_conditioning", []), positive=False)
            mark_prompt_context(getattr(process, "hr_c", []), positive=True)
            mark_prompt_context(getattr(process, "hr_uc", []), positive=False)
            return process.sample_before_CN_hack(*args, **kwargs)

        def forward(self, x, timesteps=None, context=None, **kwargs):
            entry = {}
            CALLS.append(entry)
            self.stand_in_entry = entry
            cond_mark, outer.current_uc_indices, outer.current_c_indices, context = unmark_prompt_context(context)
            outer.model.cond_mark = cond_mark
            outer.is_in_high_res_fix = bool(getattr(process, "is_hr_pass", False))

            total_controlnet_embedding = [0.0, 0.0]
            for index, param in enumerate(outer.control_params):
                if param.guidance_stopped or param.disabled_by_hr_option(outer.is_in_high_res_fix):
                    continue
                if not param.control_model_type.is_controlnet:
                    continue
                control = param.control_model(x=x, hint=param.hint_cond, timesteps=timesteps, context=context)
                control_scales = [param.weight] * len(control)
                if param.advanced_weighting is not None:
                    control_scales = param.advanced_weighting
                entry[index] = tuple(control_scales)
                for i, (c, scale) in enumerate(zip(control, control_scales)):
                    total_controlnet_embedding[i] = c * scale + total_controlnet_embedding[i]

            # TinyUNet.forward with the control added (hook.py:796-835 for the real UNet)
            self.calls.append(x.shape[0])
            freqs = torch.arange(4, dtype=torch.float32) + 1
            t = timesteps.float()[:, None] / 1000 * freqs
            temb = torch.cat([t.sin(), t.cos()], dim=1)
            h = aligned_adding(self.input(x), total_controlnet_embedding[0])
            h = h + self.time(temb)[:, :, None, None] + self.context(context.mean(1))[:, :, None, None]
            h = aligned_adding(h, total_controlnet_embedding[1])
            return self.output(torch.tanh(h)) * 0.5

        if getattr(process, "sample_before_CN_hack", None) is None:
            process.sample_before_CN_hack = process.sample
        process.sample = process_sample

        model._original_forward = model.forward
        outer.original_forward = model.forward
        model.forward = forward.__get__(model, type(model))
        script_callbacks.on_cfg_denoiser(self.guidance_schedule_handler)

    def restore(self):
        script_callbacks.remove_callbacks_for_function(self.guidance_schedule_handler)
        self.control_params = None
        if self.model is not None and hasattr(self.model, "_original_forward"):
            self.model.forward = self.model._original_forward
            del self.model._original_forward
