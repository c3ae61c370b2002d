"""Stand-in for modules/shared.py + shared_state.py + shared_options.py (A1111 v1.10.1, 82a973c0).

`opts` holds the defaults of the options the sampling code reads; `state` the job flags
(interrupt/skip) and per-call latents; `sd_model` is set by the tests (a tests/stubs/tiny_sd model).
"""

import torch

from modules.options import OptionInfo, Options  # noqa: F401  (OptionInfo: settings code uses shared.OptionInfo)

_defaults = {
    "skip_early_cond": 0.0,
    "s_min_uncond": 0.0,
    "s_min_uncond_all": False,
    "batch_cond_uncond": True,
    "pad_cond_uncond": False,
    "pad_cond_uncond_v0": False,
    "live_preview_content": "Prompt",
    "lora_functional": False,
    "use_old_scheduling": False,
    "persistent_cond_cache": True,
    "CLIP_stop_at_last_layers": 1,
    "img2img_fix_steps": False,
    "img2img_extra_noise": 0.0,
    "initial_noise_multiplier": 1.0,
    "no_dpmpp_sde_batch_determinism": False,
    "sgm_noise_multiplier": False,
    "always_discard_next_to_last_sigma": False,
    "eta_ancestral": 1.0,
    "eta_noise_seed_delta": 0,
    "hires_fix_use_firstpass_conds": False,
    "sd_model_checkpoint": None,
    "emphasis": "Original",
    "sdxl_crop_top": 0,
    "sdxl_crop_left": 0,
    "hires_fix_refiner_pass": "second pass",
    "refiner_switch_by_sample_steps": False,
}
opts = Options({key: OptionInfo(value) for key, value in _defaults.items()})


class State:
    """modules/shared_state.py: the flags the UI's Interrupt and Skip buttons set."""

    def __init__(self):
        self.begin()

    def begin(self, job="(unknown)"):
        self.skipped = False
        self.interrupted = False
        self.stopping_generation = False
        self.job_count = -1
        self.job_no = 0
        self.sampling_step = 0
        self.sampling_steps = 0
        self.current_latent = None
        self.processing_has_refined_job_count = False

    def end(self):
        pass

    def skip(self):
        self.skipped = True

    def interrupt(self):
        self.interrupted = True

    def nextjob(self):
        self.job_no += 1
        self.sampling_step = 0


class _TotalTqdm:
    def update(self):
        pass

    def updateTotal(self, new_total):
        pass


class _PromptStyles:
    def apply_styles_to_prompt(self, prompt, styles):
        return prompt

    def apply_negative_styles_to_prompt(self, prompt, styles):
        return prompt


state = State()
total_tqdm = _TotalTqdm()
prompt_styles = _PromptStyles()
sd_model = None
device = torch.device("cpu")
weight_load_location = None
parallel_processing_allowed = True
latent_upscale_modes = {"Latent": {"mode": "nearest", "antialias": False}}
latent_upscale_default_mode = "Latent"
