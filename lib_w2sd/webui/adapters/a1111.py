"""The AUTOMATIC1111 v1.10 adapter (base.Backend), written against modules/processing.py,
sd_samplers_kdiffusion.py, sd_samplers_cfg_denoiser.py, sd_samplers_common.py and
extensions-builtin/Lora/networks.py of v1.10.1 (commit 82a973c0).

- Denoiser: p.sampler.model_wrap_cfg (CFGDenoiserKDiffusion); its forward picks prompt-editing
  conds by the call counter `step`, blends the inpainting mask, sets sampler.last_latent and
  state.current_latent: extra_call saves and restores those.
- A CFG scale of 1 still runs the uncond batch there; cond_only skips it through the WebUI's own
  skip-early-CFG branch (opts.skip_early_cond = inf for that call), which combines at scale 1.
- One UNet batch for strong and weak (rows.py): the k-diffusion wrapper calls
  `shared.sd_model.apply_model(x, t, cond)` for each batch of the denoiser (one, or several with
  batch_cond_uncond off or cond/uncond of other lengths): unet_rows routes that method. Edit
  models (InstructPix2Pix) split their batch in fixed thirds, so they keep two calls.
- LoRA: the built-in Lora merges weights lazily per layer, keyed by every network's multipliers,
  so changing a multiplier re-merges each LoRA layer from its CPU backup. For a pass with a LoRA
  difference, lora_session turns on the Lora extension's own functional mode (LoRA added in
  each layer's forward); switching is then only setting `unet_multiplier`. Afterwards the option
  and multipliers are put back and the layers that held the prompt's LoRAs are merged again,
  bit-identical to before.
  Re-merging instead would restore EVERY UNet layer from its CPU backup at each switch
  (networks.py:411-470): measured on real A1111 1.10.1 (CPU, through the API), a LoRA-difference
  reflected step costs 1.27x a CFG-difference one that way and 0.78x in functional mode.
- Weak checkpoint: a copy of shared.sd_model.model.diffusion_model filled from the file
  (checkpoint.py), swapped in as `model.diffusion_model` for the weak call (without ControlNet's
  hook, so it gets the conds without the extension's marking, a1111_controlnet.unmarked).
- ControlNet: the units of the sd-webui-controlnet extension, scaled or off per call
  (a1111_controlnet.py); conds W2SD encodes get the extension's cond/uncond marking.
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Dict, Iterator, Optional

import torch
from modules import devices, shared

from .. import rows
from ..surface import settings
from . import a1111_controlnet, checkpoint
from .checkpoint import CheckpointError
from .family import FamilyBackend, describe, is_hires, module_state

# Model set-ups whose uncond skip fails in A1111 1.10 (image conds keep the uncond rows).
_CONCAT_KEYS = ("hybrid", "concat", "crossattn-adm")


class A1111Backend(FamilyBackend):
    name = "a1111"

    # -- extra calls ------------------------------------------------------------------------
    @contextlib.contextmanager
    def cond_only(self, p) -> Iterator[bool]:
        model = shared.sd_model
        if getattr(model.model, "conditioning_key", None) in _CONCAT_KEYS or model.cond_stage_key == "edit":
            yield False
            return
        with self.restoring_keys(shared.opts.data, "skip_early_cond"):
            shared.opts.data["skip_early_cond"] = math.inf
            yield True

    # -- one UNet batch for strong and weak -------------------------------------------------
    def joint_conds(self, p, cond, weak_cond):
        if shared.sd_model.cond_stage_key == "edit":
            return None  # combine_denoised_for_edit_model reads x_out in three fixed chunks
        return super().joint_conds(p, cond, weak_cond)

    def unet_rows(self, p, cache, record: bool):
        return rows.routed(shared.sd_model, "apply_model", cache, record, _apply_model_rows)

    def encode(self, p, texts, negative: bool):
        own = (p.hr_uc if negative else p.hr_c) if is_hires(p) else (p.uc if negative else p.c)
        return a1111_controlnet.mark_like(p, super().encode(p, texts, negative), own, positive=not negative)

    # -- LoRA -------------------------------------------------------------------------------
    @staticmethod
    def _networks():
        """The built-in Lora extension's `networks` module (loaded by its script), or None."""
        module = sys.modules.get("networks")
        return module if hasattr(module, "loaded_networks") else None

    def prompt_loras(self, p) -> Dict[str, float]:
        networks = self._networks()
        return {net.name: net.unet_multiplier for net in networks.loaded_networks} if networks else {}

    @contextlib.contextmanager
    def lora_session(self, p) -> Iterator[None]:
        layers = [m for m in shared.sd_model.model.diffusion_model.modules() if hasattr(m, "network_layer_name")]
        merged = [(layer, getattr(layer, "network_current_names", ())) for layer in layers]
        try:
            with self.restoring_keys(shared.opts.data, "lora_functional"):
                shared.opts.data["lora_functional"] = True
                with self._multipliers_restored():
                    yield
        finally:
            self._remerge(merged)

    def _remerge(self, merged) -> None:
        """Functional mode unmerged each layer it ran (weights back to the original, backup
        dropped). Merge again the layers that held the current LoRAs before the session, so
        weights and bookkeeping are bit-identical to before (the Lora extension itself would
        redo this merge on the layer's next forward)."""
        networks = self._networks()
        wanted = tuple((x.name, x.te_multiplier, x.unet_multiplier, x.dyn_dim) for x in networks.loaded_networks)
        with torch.no_grad():
            for layer, names in merged:
                if names and names == wanted and getattr(layer, "network_current_names", ()) != names:
                    networks.network_apply_weights(layer)

    @contextlib.contextmanager
    def _multipliers_restored(self) -> Iterator[None]:
        networks = self._networks()
        saved = [(net, net.unet_multiplier) for net in (networks.loaded_networks if networks else [])]
        try:
            yield
        finally:
            for net, multiplier in saved:
                net.unet_multiplier = multiplier

    @contextlib.contextmanager
    def lora_multiplier(self, p, multiplier: float) -> Iterator[None]:
        with self._multipliers_restored():
            for net in self._networks().loaded_networks:
                net.unet_multiplier = multiplier
            yield

    # -- ControlNet -------------------------------------------------------------------------
    def controlnet_units(self, p):
        return a1111_controlnet.units(p, is_hires(p))

    def controlnet_multiplier(self, p, multiplier: float):
        return a1111_controlnet.multiplier(p, multiplier)

    # -- a second UNet ----------------------------------------------------------------------
    def load_unet(self, name: str) -> Optional[checkpoint.WeakUNet]:
        info = self.checkpoint_info(name)
        if info is None:
            return None
        current_unet = sys.modules.get("modules.sd_unet")
        if current_unet is not None and getattr(current_unet, "current_unet", None) is not None:
            raise CheckpointError("weak_checkpoint cannot be used while an SD UNet replacement (setting 'SD Unet') "
                                  "runs the model: it would run the weak call too")
        unet = shared.sd_model.model.diffusion_model
        return checkpoint.cache.get(info.title, info.filename, info.hash, unet, devices.device)

    @contextlib.contextmanager
    def use_unet(self, p, handle: checkpoint.WeakUNet) -> Iterator[None]:
        with self.restoring_attributes(shared.sd_model.model, "diffusion_model"), \
                a1111_controlnet.unmarked(p, handle.module):
            shared.sd_model.model.diffusion_model = handle.module
            yield

    def release_unets(self, generation_ended: bool) -> None:
        checkpoint.cache.release(settings.checkpoint_memory(), generation_ended, devices.cpu)

    # -- diagnostics ------------------------------------------------------------------------
    def model_state(self, model) -> Dict[str, str]:
        state = module_state(model.model.diffusion_model)
        state["apply_model"] = describe(vars(model).get("apply_model"))  # rows.routed sets it per call
        networks = self._networks()
        state["loras"] = repr([(n.name, n.te_multiplier, n.unet_multiplier, n.dyn_dim)
                               for n in networks.loaded_networks]) if networks else "no Lora extension"
        return state

    def cache_state(self) -> Dict[str, str]:
        return {"weak unet": checkpoint.cache.describe()}


def _apply_model_rows(x, t, cond, *args, **kwargs):
    """Row keys of LatentDiffusion.apply_model(x, t, cond): the latent, timestep and every cond
    tensor the model reads ({"c_crossattn": [..], "c_concat": [..]}; SDXL {"crossattn", "vector",
    "c_concat"}). The image cond only where the model concatenates it: the others ignore it, and it
    keeps its uncond rows in a call whose uncond batch is skipped."""
    reads_image = getattr(shared.sd_model.model, "conditioning_key", None) in _CONCAT_KEYS
    tensors = [x, t]
    for key in sorted(cond):
        if key == "c_concat" and not reads_image:
            continue
        values = cond[key] if isinstance(cond[key], (list, tuple)) else [cond[key]]
        tensors += [v for v in values if isinstance(v, torch.Tensor)]
    return rows.row_keys(x.shape[0], tensors)
