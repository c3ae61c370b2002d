"""The AUTOMATIC1111 v1.10 adapter (base.Backend), written against modules/processing.py,
sd_samplers_kdiffusion.py, sd_samplers_cfg_denoiser.py, sd_samplers_common.py and
extensions-builtin/Lora/networks.py of v1.10.1 (commit 82a973c0).

- Denoiser: p.sampler.model_wrap_cfg (CFGDenoiserKDiffusion); its forward picks prompt-editing
  conds by the call counter `step`, blends the inpainting mask, sets sampler.last_latent and
  state.current_latent: extra_call saves and restores those.
- A CFG scale of 1 still runs the uncond batch there; cond_only skips it through the WebUI's own
  skip-early-CFG branch (opts.skip_early_cond = inf for that call), which combines at scale 1.
- LoRA: the built-in Lora merges weights lazily per layer, keyed by every network's multipliers,
  so changing a multiplier re-merges each LoRA layer from its CPU backup. For a pass with a LoRA
  difference, lora_session turns on the Lora extension's own functional mode (LoRA added in
  each layer's forward); switching is then only setting `unet_multiplier`. Afterwards the option
  and multipliers are put back and the layers that held the prompt's LoRAs are merged again,
  bit-identical to before.
- Weak checkpoint: a copy of shared.sd_model.model.diffusion_model filled from the file
  (checkpoint.py), swapped in as `model.diffusion_model` for the weak call.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import sys
from typing import Callable, Iterator, List

import torch
from modules import devices, extra_networks, processing, prompt_parser, sd_models, sd_samplers, shared
from modules.sd_samplers_kdiffusion import KDiffusionSampler

from . import checkpoint, settings
from .base import HIRES, IMG2IMG, TXT2IMG, Backend, Conds, PassInfo
from .checkpoint import CheckpointError

# Infotext keys the CFG denoiser writes when it skips the uncond batch (ours must not leave them).
_SKIP_KEYS = ("Skip Early CFG", "NGMS", "NGMS all steps")
# Model set-ups whose uncond skip fails in A1111 1.10 (image conds keep the uncond rows).
_CONCAT_KEYS = ("hybrid", "concat", "crossattn-adm")


class A1111Backend(Backend):
    name = "a1111"

    # -- messages ---------------------------------------------------------------------------
    def warn(self, p, message: str) -> None:
        p.comment(message)
        print(message, file=sys.stderr)

    # -- the pass ---------------------------------------------------------------------------
    def pass_info(self, p) -> PassInfo:
        if getattr(p, "is_hr_pass", False):
            kind, name = HIRES, getattr(p, "hr_sampler_name", None) or p.sampler_name
        else:
            kind = IMG2IMG if isinstance(p, processing.StableDiffusionProcessingImg2Img) else TXT2IMG
            name = p.sampler_name
        return PassInfo(kind=kind, sampler_name=name, unsupported=self._unsupported(p, name))

    @staticmethod
    def _unsupported(p, name: str):
        sampler = p.sampler
        if not isinstance(sampler, KDiffusionSampler):
            return (f"the sampler {name!r} steps through timesteps, not noise levels; "
                    "W2SD works with k-diffusion samplers (Euler, Euler a, Heun, DPM++ 2M, ...)")
        if type(sampler).__name__ == "LCMSampler":
            return f"the sampler {name!r} (latent consistency, its own maths) is not supported"
        parameters = inspect.signature(getattr(sampler.func, "w2sd_original", sampler.func)).parameters
        if "sigmas" not in parameters and not {"sigma_min", "sigma_max", "n"} <= set(parameters):
            return f"the sampler {name!r} chooses its steps as it goes; W2SD needs a fixed schedule"
        if getattr(p, "refiner_checkpoint_info", None) is not None:
            return "the refiner switches models in the middle of sampling"
        return None

    def install(self, p, wrap: Callable[[Callable], Callable]) -> None:
        sampler = p.sampler
        sampler.func = wrap(getattr(sampler.func, "w2sd_original", sampler.func))

    def uninstall(self, p) -> None:
        sampler = getattr(p, "sampler", None)
        original = getattr(getattr(sampler, "func", None), "w2sd_original", None)
        if original is not None:
            sampler.func = original

    def cfg_denoiser(self, p) -> Callable:
        return p.sampler.model_wrap_cfg

    def sampling_state(self, p) -> Callable[[], None]:
        rng, den, sampler, state = p.rng, p.sampler.model_wrap_cfg, p.sampler, shared.state
        generators = list(rng.generators)
        states = [g.get_state() if hasattr(g, "get_state") else copy.copy(vars(g)) for g in generators]
        saved = (rng.is_first if hasattr(rng, "is_first") else None, den.step, sampler.last_latent,
                 state.sampling_step, state.current_latent)

        def restore():
            rng.generators = generators
            for g, s in zip(generators, states):
                g.set_state(s) if hasattr(g, "set_state") else vars(g).update(s)
            is_first, den.step, sampler.last_latent, state.sampling_step, state.current_latent = saved
            if is_first is not None:
                rng.is_first = is_first

        return restore

    # -- extra calls ------------------------------------------------------------------------
    @contextlib.contextmanager
    def extra_call(self, p, role: str) -> Iterator[None]:
        den, sampler = p.sampler.model_wrap_cfg, p.sampler
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.restoring_attributes(den, "step", "padded_cond_uncond", "padded_cond_uncond_v0"))
            stack.enter_context(self.restoring_attributes(sampler, "last_latent"))
            stack.enter_context(self.restoring_attributes(shared.state, "current_latent"))
            stack.enter_context(self.restoring_keys(p.extra_generation_params, *_SKIP_KEYS))
            p.w2sd_extra_call = role
            try:
                yield
            finally:
                p.w2sd_extra_call = None

    @contextlib.contextmanager
    def cond_only(self, p) -> Iterator[bool]:
        model = shared.sd_model
        if getattr(model.model, "conditioning_key", None) in _CONCAT_KEYS or model.cond_stage_key == "edit":
            yield False
            return
        with self.restoring_keys(shared.opts.data, "skip_early_cond"):
            shared.opts.data["skip_early_cond"] = math.inf
            yield True

    def encode_conds(self, p, prompt: str, negative_prompt: str) -> Conds:
        cache = p.__dict__.setdefault("w2sd_cond_cache", {})
        hires = getattr(p, "is_hr_pass", False)
        if hires:
            width, height = p.hr_upscale_to_x, p.hr_upscale_to_y
            config = sd_samplers.find_sampler_config(p.hr_sampler_name or p.sampler_name)
            steps = p.hr_second_pass_steps or p.steps
            hires_steps = config.total_steps(steps) if config else steps
            network_data = p.hr_extra_network_data
        else:
            width, height, hires_steps, network_data = p.width, p.height, None, p.extra_network_data

        def encode(text: str, negative: bool):
            if not text:
                return None
            text = extra_networks.parse_prompts([text])[0][0]  # <lora:...> tags are not text
            prompts = prompt_parser.SdConditioning([text] * len(p.prompts), is_negative_prompt=negative,
                                                   width=width, height=height)
            function = (prompt_parser.get_learned_conditioning if negative
                        else prompt_parser.get_multicond_learned_conditioning)
            slot = cache.setdefault((text, negative, hires), [None, None])
            return p.get_conds_with_caching(function, prompts, p.firstpass_steps, [slot], network_data, hires_steps)

        return Conds(cond=encode(prompt, False), uncond=encode(negative_prompt, True))

    # -- LoRA -------------------------------------------------------------------------------
    @staticmethod
    def _networks():
        """The built-in Lora extension's `networks` module (loaded by its script), or None."""
        module = sys.modules.get("networks")
        return module if hasattr(module, "loaded_networks") else None

    def prompt_loras(self, p) -> List[str]:
        networks = self._networks()
        return [net.name for net in networks.loaded_networks] if networks else []

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

    # -- a second UNet ----------------------------------------------------------------------
    def load_unet(self, name: str) -> checkpoint.WeakUNet:
        info = sd_models.get_closet_checkpoint_match(name)
        if info is None:
            raise CheckpointError(f"weak_checkpoint {name!r} is not in the WebUI's checkpoint list")
        current_unet = sys.modules.get("modules.sd_unet")
        if current_unet is not None and getattr(current_unet, "current_unet", None) is not None:
            raise CheckpointError("weak_checkpoint cannot be used while an SD UNet replacement (setting 'SD Unet') "
                                  "runs the model: it would run the weak call too")
        unet = shared.sd_model.model.diffusion_model
        return checkpoint.cache.get(info.title, info.filename, info.hash, unet, devices.device)

    @contextlib.contextmanager
    def use_unet(self, p, handle: checkpoint.WeakUNet) -> Iterator[None]:
        with self.restoring_attributes(shared.sd_model.model, "diffusion_model"):
            shared.sd_model.model.diffusion_model = handle.module
            yield

    def release_unets(self, generation_ended: bool) -> None:
        checkpoint.cache.release(settings.checkpoint_memory(), generation_ended, devices.cpu)
