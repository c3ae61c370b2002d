"""The adapter for the forks that kept Forge's first backend (ldm_patched, ComfyUI-style model
patchers): reForge (Panchovix/stable-diffusion-webui-reForge, main 3b56b268, abbreviated R:
below) and Forge Classic (Haoming02/sd-webui-forge-classic, branch classic 1f95d717, C:).

Their `modules` are AUTOMATIC1111's where family.FamilyBackend touches them (p.sampler.func and
p.sampler.model_wrap_cfg of KDiffusionSampler, R:modules/sd_samplers_kdiffusion.py:121-137; the
CFG denoiser's `step` counter, last_latent and padding flags, R/C:modules/sd_samplers_cfg_denoiser.py;
p.get_conds_with_caching and SdConditioning without Forge 2's distilled CFG,
R:modules/processing.py:560-620, C:501-511; the CompVisDenoiser over shared.sd_model whose
`forge_objects` hold the UNet patcher). What differs, and how it is answered here:

- CFG. Both denoisers hand the conds to ldm_patched's sampling_function, which drops the uncond
  batch at cond_scale 1 unless model_options['disable_cfg1_optimization'] (R:ldm_patched/modules/
  samplers.py:413-417, C:ldm_patched/modules/samplers.py:334-347): cond_only relies on that, as
  on Forge 2. reForge's denoiser replaces cond_scale by p.hr_cfg in the hires pass (R:modules/
  sd_samplers_cfg_denoiser.py:180-181; hr_cfg 0 means the first pass's CFG, resolved in
  calculate_hr_conds, R:modules/processing.py:1640-1650): every W2SD call sets p.hr_cfg to its
  own scale, as forge.py does. Classic has no hires CFG: its hires pass runs at p.cfg_scale.
  Classic forces cond_scale 1 while step/total_steps <= opts.skip_early_cond
  (C:modules/sd_samplers_cfg_denoiser.py:126-129), which holds at step 0 even with the option
  at 0: there the sampler's own call and W2SD's both run at CFG 1, so a pure CFG difference
  reflects nothing at the first step. Extra calls keep den.step, so they follow that rule as
  the sampler's own call of their step does.
- Prompts. Both compose the AND-subprompts by position with a weight per position
  (R/C:modules_forge/forge_sampler.py cond_from_a1111_to_patched_ldm_weighted, R:33-53, C:32-52)
  and sum the cond rows by their strength (R:samplers.py:336-353, C:samplers.py:296-328): a
  weight-0 row adds nothing, so family.joint_conds serves the joint call. reForge's dynamic clip
  skip swaps the conds inside the denoiser for its own per-step sets (R:sd_samplers_cfg_denoiser.py
  :140-148), which would replace a weak prompt's: the prompt difference is refused there.
- One UNet batch for strong and weak (rows.py): calc_cond_batch calls
  `model.apply_model(input_x, timestep_, **c)` on forge_objects.unet.model (BaseModel) for each
  batch it forms by free memory, with transformer_options['cond_or_uncond'] (R:samplers.py:
  296-334, C:samplers.py:237-293; through a model_function_wrapper too, which gets the routed
  method): the row keys are forge.py's (the same keyword conds: c_crossattn, y, c_concat).
- Inpainting. Classic pre-blends x with noise from the GLOBAL torch RNG on every denoiser call
  that has a mask (C:sd_samplers_cfg_denoiser.py:119-121); reForge only with
  mask_before_denoising (R:168-170, never set by reForge itself): extra calls put the global RNG
  back, so the sampler's own calls draw what they would have drawn.
- Refiner. Both call apply_refiner(self, x) without sigma, so the switch comes by the count of
  the sampler's own calls (R:modules/sd_samplers_common.py:186-188, C:176-177).
- LoRA. old_forge_lora.OldLoraSwitch: per call, each LoRA layer runs a new parameter holding its
  weight merged with the prompt's patches at (target - own) by the patcher's own calculate_weight;
  the merged weights are never written, and each layer gets its own parameter back after the call.
- Checkpoint. old_forge_unet: the fork's loader on the file's UNet tensors only, checked against the
  loaded UNet, loaded beside it by ldm_patched's memory manager; the weak call runs with
  forge_objects.unet pointed at a clone of it carrying the strong patcher's options.
- Refused for now, with one sentence naming the WebUI (common leaves that kind out and reflects the
  others): the ControlNet difference (the built-in ControlNet's units are not scaled per call yet).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, Optional

from modules import shared

from . import old_forge_lora, old_forge_unet
from .family import is_hires
from .forge_family import ForgeFamilyBackend, patcher_state, unet_patcher, with_hires_cfg

BACKEND = "Forge's first backend (ldm_patched)"
LORA_ATTR = "w2sd_old_forge_lora"  # p's attribute holding the pass's OldLoraSwitch during sampling
_REFUSED = {
    "controlnet": "the ControlNet difference is not supported there yet (W2SD does not scale the built-in "
                  "ControlNet's units on {backend} yet)",
}


class OldForgeBackend(ForgeFamilyBackend):
    name = "old_forge"

    def __init__(self, webui):
        super().__init__()
        self.webui = webui
        # reForge's hires pass runs at p.hr_cfg whatever cond_scale says (R:sd_samplers_cfg_denoiser.py:180-181)
        self.hires_cfg = webui.name == "reForge"

    # -- kinds this WebUI cannot run --------------------------------------------------------
    def refuses(self, p, kind: str) -> Optional[str]:
        reason = _REFUSED.get(kind)
        if kind == "prompt" and getattr(shared.opts, "dynamic_clip_skip_enabled", False) and \
                getattr(p, "dynamic_clip_skip_schedule", None):
            reason = ("a weak prompt cannot run with the setting 'Dynamic clip skip ramp' on (its denoiser replaces "
                      "every call's conds by its own per-step sets)")
        return f"{self.webui}: {reason.format(backend=BACKEND)}" if reason else None

    # -- the pass ---------------------------------------------------------------------------
    def _reforge_hires(self, p) -> bool:
        return self.hires_cfg and is_hires(p)

    def pass_cfg(self, p) -> float:
        return p.hr_cfg if self._reforge_hires(p) else p.cfg_scale

    def install(self, p, wrap: Callable[[Callable], Callable]) -> None:
        super().install(p, wrap)
        if self._reforge_hires(p):
            p.sampler.func = with_hires_cfg(p, p.sampler.func)

    def cfg_denoiser(self, p) -> Callable:
        den = p.sampler.model_wrap_cfg
        if not self._reforge_hires(p):
            return den

        def denoise(x, sigma, **args):
            with self.restoring_attributes(p, "hr_cfg"):
                p.hr_cfg = args["cond_scale"]
                return den(x, sigma, **args)

        return denoise

    # -- LoRA (old_forge_lora) -----------------------------------------------------------------
    def prompt_loras(self, p) -> Dict[str, float]:
        sd_model = shared.sd_model
        patches = old_forge_lora.prompt_lora_patches(sd_model, sd_model.forge_objects.unet)
        return old_forge_lora.lora_multipliers(patches)

    @contextlib.contextmanager
    def lora_session(self, p) -> Iterator[None]:
        """Entered in the sampler call, after sampling_prepare loaded (and merged) the pass's UNet."""
        unet = unet_patcher(p)
        patches = old_forge_lora.prompt_lora_patches(shared.sd_model, unet)
        with self.restoring_keys(p.__dict__, LORA_ATTR):
            p.__dict__[LORA_ATTR] = old_forge_lora.OldLoraSwitch(unet, patches) if patches else None
            yield

    def lora_multiplier(self, p, multiplier: float):
        switch = p.__dict__.get(LORA_ATTR)
        return switch.applied(multiplier) if switch is not None else contextlib.nullcontext()

    # -- a second UNet (old_forge_unet) -------------------------------------------------------
    def load_unet(self, name: str) -> Optional[old_forge_unet.WeakUNet]:
        info = self.checkpoint_info(name)
        return None if info is None else old_forge_unet.cache.get(name, info, shared.sd_model.forge_objects.unet)

    def unet_cache(self):
        return old_forge_unet.cache

    # -- GET /w2sd/v1/state ------------------------------------------------------------------------
    def model_state(self, model) -> Dict[str, str]:
        # the patcher's patches: {weight key: [patch, ...]} (old_forge_lora never adds to them)
        return patcher_state(model, lambda patcher: sorted((k, len(v)) for k, v in patcher.patches.items()))

    def cache_state(self) -> Dict[str, str]:
        return {"weak unet": old_forge_unet.cache.describe()}

    # -- refused kinds (refuses() keeps common from asking these) ------------------------------

    def controlnet_units(self, p) -> Optional[int]:
        return None

    def controlnet_multiplier(self, p, multiplier: float):
        return contextlib.nullcontext()

