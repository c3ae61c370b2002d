"""What Forge 2 (forge.py, lllyasviel dfdcbab6) and the forks on Forge's first backend
(old_forge.py: reForge main 3b56b268, Forge Classic 1f95d717) answer alike, on top of
family.FamilyBackend. Both hand the CFG denoiser's conds to a ComfyUI-style sampling function
over the UNet patcher in `forge_objects.unet`:

- Inpainting: the denoiser may pre-blend x with noise from the GLOBAL torch RNG on every call
  (Forge sd_samplers_cfg_denoiser.py:178-181, Classic 119-121, reForge 168-170 with
  mask_before_denoising): the sampling-state snapshot holds that RNG too, and extra calls put it
  back, so the sampler's own calls draw what they would have drawn.
- Refiner: apply_refiner switches by the count of the sampler's own calls (Forge
  sd_samplers_common.py:166-171; reForge 186-188 and Classic 176-177, called without sigma).
- CFG 1: the sampling function drops the uncond batch at scale 1 unless the UNet patcher's
  model_options say 'disable_cfg1_optimization' (Forge sampling_function.py:295-298;
  ldm_patched/modules/samplers.py reForge 413-417, Classic 334-347).
- One UNet batch for strong and weak (rows.py): the sampling function calls
  `model.apply_model(x, t, **c)` on forge_objects.unet.model for each batch it forms, with the
  keyword conds c_crossattn, y, c_concat and transformer_options['cond_or_uncond'] (Forge
  sampling_function.py:154-289; reForge samplers.py:296-334, Classic 237-293; through a
  model_function_wrapper too, which gets the routed method).
- Weak checkpoint: the weak call runs with forge_objects.unet pointed at a patcher over the weak
  UNet (the adapter's cache makes and loads it); the sampling function reads it per call.
- Hires CFG: Forge and reForge replace the hires pass's cond_scale by p.hr_cfg in the denoiser
  (with_hires_cfg gives the installed sampler that scale).
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable, Dict, Iterator

import torch

from .. import rows
from ..surface import settings
from .family import FamilyBackend, describe, module_state


class ForgeFamilyBackend(FamilyBackend):
    """The answers Forge 2 and the first-backend forks share."""

    def __init__(self):
        super().__init__()
        self._weak_call_patchers: Dict[int, Any] = {}  # id(strong patcher) -> weak call patcher, this pass

    def unet_cache(self):
        """The adapter's weak-UNet cache (forge_unet.ForgeUNetCache, or old_forge_unet's)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def use_unet(self, p, handle) -> Iterator[None]:
        """The enclosed den calls with forge_objects.unet pointed at the weak call's patcher (the
        sampling function reads it per call)."""
        forge_objects = call_forge_objects(p)
        strong = forge_objects.unet
        patcher = self._weak_call_patchers.get(id(strong))
        if patcher is None:
            patcher = self._weak_call_patchers[id(strong)] = self.unet_cache().weak_call(handle, strong)
        with self.restoring_attributes(forge_objects, "unet"):
            forge_objects.unet = patcher
            yield

    def release_unets(self, generation_ended: bool) -> None:
        self._weak_call_patchers.clear()
        self.unet_cache().release(settings.checkpoint_memory(), generation_ended)

    def sampling_state(self, p) -> Callable[[], None]:
        restore_sampling, restore_rng = super().sampling_state(p), _global_rng_snapshot()

        def restore():
            restore_sampling()
            restore_rng()

        return restore

    def _completed_ratio(self, p, sigma, calls: int) -> float:
        """apply_refiner counts the sampler's own calls, whatever the noise level."""
        return calls / p.sampler.model_wrap_cfg.total_steps

    @contextlib.contextmanager
    def extra_call(self, p, role: str) -> Iterator[None]:
        restore_rng = _global_rng_snapshot() if p.sampler.model_wrap_cfg.mask is not None else None
        try:
            with super().extra_call(p, role):
                yield
        finally:
            if restore_rng is not None:
                restore_rng()

    @contextlib.contextmanager
    def cond_only(self, p) -> Iterator[bool]:
        """The sampling function skips the uncond batch at scale 1 unless an extension asked it not to."""
        yield not unet_patcher(p).model_options.get("disable_cfg1_optimization", False)

    def unet_rows(self, p, cache, record: bool):
        return rows.routed(unet_patcher(p).model, "apply_model", cache, record, _apply_model_rows)


def patcher_state(model, loras: Callable[[Any], Any]) -> Dict[str, str]:
    """The /w2sd/v1/state items of a Forge-family model: each generation gets a shallow copy of
    forge_objects_original (processing.py), so the originals and the model they share are what must
    come back. `loras(patcher)` lists a patcher's LoRA patches (the backends keep them differently)."""
    original = model.forge_objects_original.unet
    base = original.model  # Forge 2's KModel, ldm_patched's BaseModel
    state = module_state(base.diffusion_model)
    state["apply_model"] = describe(vars(base).get("apply_model"))  # rows.routed sets it per call
    state["unet patcher"] = f"{describe(original)} over {describe(base)}"
    state["lora patches"] = repr(loras(original))
    # what the last generation left on its copy: the UNet it runs (a weak call swaps it), its LoRAs
    current = model.forge_objects.unet
    unet = "the checkpoint's own" if current.model is base else describe(current.model)
    state["current unet"] = f"{unet}, loras {loras(current)}"
    return state


def call_forge_objects(p):
    """The forge_objects the pass's den calls run with (Forge sampling_function.py:326)."""
    return p.sampler.model_wrap_cfg.inner_model.inner_model.forge_objects


def unet_patcher(p):
    """The UNet patcher the pass's den calls run (read per call by the sampling function)."""
    return call_forge_objects(p).unet


# The per-batch model inputs of apply_model(x, t, **c); the ControlNet's 'control' is computed
# from these rows, 'transformer_options' is the same for all.
_ROW_INPUTS = ("c_crossattn", "y", "c_concat")


def _apply_model_rows(x, t, c_concat=None, c_crossattn=None, transformer_options=None, **c):
    c.update(c_concat=c_concat, c_crossattn=c_crossattn)
    tensors = [x, t] + [c[k] for k in _ROW_INPUTS if isinstance(c.get(k), torch.Tensor)]
    marks = (transformer_options or {}).get("cond_or_uncond") or []
    per_chunk = x.shape[0] // len(marks) if marks else 0
    return rows.row_keys(x.shape[0], tensors, [m for m in marks for _ in range(per_chunk)])


def with_hires_cfg(p, func: Callable) -> Callable:
    """`func` called with extra_args' cond_scale = p.hr_cfg, the scale the hires pass really uses
    in Forge and reForge (the sampler passes p.cfg_scale, which their denoiser ignores there)."""
    signature = inspect.signature(func)

    def sampler(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        if bound.arguments.get("extra_args") is not None:
            bound.arguments["extra_args"] = dict(bound.arguments["extra_args"], cond_scale=p.hr_cfg)
        return func(*bound.args, **bound.kwargs)

    sampler.__signature__ = signature
    sampler.w2sd_original = getattr(func, "w2sd_original", func)
    return sampler


def _global_rng_snapshot() -> Callable[[], None]:
    """Save the global torch RNG (CPU, and CUDA when in use); the returned function restores it."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None

    def restore():
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    return restore
