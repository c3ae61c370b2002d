"""The Forge adapter (base.Backend), written against lllyasviel/stable-diffusion-webui-forge main
(commit dfdcbab6): modules/processing.py, sd_samplers_kdiffusion.py, sd_samplers_cfg_denoiser.py,
backend/sampling/sampling_function.py, backend/patcher/*, backend/loader.py and
extensions-builtin/sd_forge_lora.

Forge's `modules` are AUTOMATIC1111's with sampling moved onto `backend`: ForgeBackend shares
family.FamilyBackend with the A1111 adapter (messages, which samplers can be reflected,
installing on p.sampler.func, the CFG denoiser's per-call counters, the sampling-state snapshot,
prompt encoding), forge_family.ForgeFamilyBackend with the old-backend forks' adapter (the global
RNG around extra calls, the refiner's call count, CFG 1 and the row routing below), and answers
differently where Forge differs:

- CFG. In the hires pass Forge's denoiser ignores its cond_scale argument and uses p.hr_cfg
  (sd_samplers_cfg_denoiser.py:187-188): the installed sampler gets cond_scale = p.hr_cfg in its
  extra_args, and every W2SD call sets p.hr_cfg to its own scale for the call. At scale 1
  Forge's sampling_function drops the uncond batch by itself (sampling_function.py:295-298).
  A pass generated at CFG 1 has no uncond (processing.py:499-503, 1586-1590); the negative prompt
  is then encoded in the hook for W2SD calls at another scale.
- Inpainting. Forge's denoiser pre-blends x with noise drawn from the GLOBAL torch RNG on every
  call (sd_samplers_cfg_denoiser.py:178-181): extra calls put that RNG back, so the sampler's own
  calls draw what they would have drawn.
- Prompts. SdConditioning carries the pass's distilled CFG (processing.py:491-492, 1579-1580).
- One UNet batch for strong and weak (rows.py): sampling_function's calc_cond_uncond_batch calls
  `model.apply_model(x, t, **c)` on the KModel of forge_objects.unet for each batch it forms by
  free memory (sampling_function.py:154-289; also through a model_function_wrapper, which gets
  the routed method): unet_rows routes that method; a row's key carries its cond/uncond mark.
- LoRA. forge_lora.LoraSwitch: delta patches on Forge's online-LoRA path, per call; weights are
  never touched.
- Checkpoint. forge_unet: Forge's loader, UNet only; the call runs with `forge_objects.unet`
  pointed at the weak UNet (sampling_function reads it per call, sampling_function.py:326).
- ControlNet. forge_controlnet: the built-in ControlNet's linked list (and IP-Adapter weights) on
  the patcher the call runs, scaled or removed for the call.
- The hires pass runs process_before_every_sampling twice (processing.py:1510, 1522) with a
  forge_objects reset between: nothing here lives on forge_objects between hook and sampling.
- Refiner. Forge's apply_refiner switches by the count of the sampler's own calls only
  (sd_samplers_common.py:166-171), then reloads the whole engine (forge_model_reload) and
  re-activates the prompt's LoRAs on it: W2SD's LoRA switch and weak UNet stay on the base model.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Dict, Iterator, Optional

from modules import shared

from . import forge_controlnet, forge_lora, forge_unet
from .family import describe, is_hires
from .forge_family import ForgeFamilyBackend, patcher_state, unet_patcher, with_hires_cfg

LORA_ATTR = "w2sd_forge_lora"  # p's attribute holding the pass's _LoraSession during sampling
UNCOND_ATTR = "w2sd_forge_uncond"  # p's attribute: {hires?: uncond encoded for a pass at CFG 1}


class _LoraSession:
    """One pass's LoRA switch and the multiplier asked for the current call (None: the prompt's)."""

    def __init__(self, switch: forge_lora.LoraSwitch):
        self.switch = switch
        self.multiplier = None


class ForgeBackend(ForgeFamilyBackend):
    name = "forge"

    # -- the pass ---------------------------------------------------------------------------
    def install(self, p, wrap: Callable[[Callable], Callable]) -> None:
        super().install(p, wrap)
        if is_hires(p):
            p.sampler.func = with_hires_cfg(p, p.sampler.func)
        if _pass_uncond(p) is None:
            self._encode_own_uncond(p)

    def cfg_denoiser(self, p) -> Callable:
        den = p.sampler.model_wrap_cfg
        hires = is_hires(p)

        def denoise(x, sigma, **args):
            scale = args.get("cond_scale")
            if args.get("uncond") is None and scale is not None and not math.isclose(scale, 1.0):
                args["uncond"] = p.__dict__.get(UNCOND_ATTR, {}).get(hires)
            with contextlib.ExitStack() as stack:
                if hires:
                    stack.enter_context(self.restoring_attributes(p, "hr_cfg"))
                    p.hr_cfg = scale
                stack.enter_context(self._lora_for_call(p, den))
                return den(x, sigma, **args)

        return denoise

    def pass_cfg(self, p) -> float:
        """Forge's hires pass runs at its own CFG (sd_samplers_cfg_denoiser.py:187-188)."""
        return p.hr_cfg if is_hires(p) else p.cfg_scale

    # -- extra calls ------------------------------------------------------------------------
    def conditioning_extras(self, p, hires: bool) -> Dict[str, Any]:
        """Forge's SdConditioning carries the pass's distilled CFG (processing.py:491-492, 1579-1580)."""
        return {"distilled_cfg_scale": p.hr_distilled_cfg if hires else getattr(p, "distilled_cfg_scale", None)}

    def _encode_own_uncond(self, p) -> None:
        """The pass's negative prompts encoded as Forge would have at CFG != 1 (in the hook: encoding
        loads the text encoder, which must not happen in the middle of sampling)."""
        hires = is_hires(p)
        negatives = p.hr_negative_prompts if hires else p.negative_prompts
        p.__dict__.setdefault(UNCOND_ATTR, {})[hires] = self.encode(p, list(negatives), negative=True)

    # -- LoRA -------------------------------------------------------------------------------
    def prompt_loras(self, p) -> Dict[str, float]:
        sd_model = shared.sd_model
        return forge_lora.lora_multipliers(forge_lora.prompt_lora_patches(sd_model, sd_model.forge_objects.unet))

    @contextlib.contextmanager
    def lora_session(self, p) -> Iterator[None]:
        sd_model = shared.sd_model
        unet = sd_model.forge_objects.unet
        patch_sets = forge_lora.prompt_lora_patches(sd_model, unet)
        session = _LoraSession(forge_lora.LoraSwitch(unet, patch_sets)) if patch_sets else None
        with self.restoring_keys(p.__dict__, LORA_ATTR):
            p.__dict__[LORA_ATTR] = session
            yield

    @contextlib.contextmanager
    def lora_multiplier(self, p, multiplier: float) -> Iterator[None]:
        session = p.__dict__.get(LORA_ATTR)
        if session is None:
            yield
            return
        with self.restoring_attributes(session, "multiplier"):
            session.multiplier = multiplier
            yield

    @staticmethod
    def _lora_for_call(p, den):
        """The LoRA switch for this call, on the UNet the call runs (not on a weak checkpoint's)."""
        session = p.__dict__.get(LORA_ATTR)
        if session is None or session.multiplier is None:
            return contextlib.nullcontext()
        if den.inner_model.inner_model.forge_objects.unet.model is not session.switch.model:
            return contextlib.nullcontext()
        return session.switch.applied(session.multiplier)

    # -- ControlNet -------------------------------------------------------------------------
    def controlnet_units(self, p) -> int:
        return forge_controlnet.units(unet_patcher(p))

    def controlnet_multiplier(self, p, multiplier: float):
        return forge_controlnet.multiplier(unet_patcher(p), multiplier)

    # -- a second UNet ----------------------------------------------------------------------
    def load_unet(self, name: str) -> Optional[forge_unet.WeakUNet]:
        info = self.checkpoint_info(name)
        return None if info is None else forge_unet.cache.get(name, info, shared.sd_model)

    def unet_cache(self):
        return forge_unet.cache

    # -- diagnostics ------------------------------------------------------------------------
    def model_state(self, model) -> Dict[str, str]:
        state = patcher_state(model, lambda patcher: sorted(map(repr, patcher.lora_patches)))
        original = model.forge_objects_original.unet
        state["controlnet"] = describe(getattr(original, "controlnet_linked_list", None))
        online = [(name, sorted((k, len(v)) for k, v in vars(m)["forge_online_loras"].items()))
                  for name, m in original.model.named_modules() if "forge_online_loras" in vars(m)]
        state["online loras"] = repr(online)[:200] + f" ({len(online)} layers)"  # forge_lora.LoraSwitch sets them
        return state

    def cache_state(self) -> Dict[str, str]:
        return {"weak unet": forge_unet.cache.describe()}


def _pass_uncond(p):
    return p.hr_uc if is_hires(p) else p.uc
