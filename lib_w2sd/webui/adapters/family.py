"""What AUTOMATIC1111 1.10 and Forge answer alike: Forge's `modules` are A1111's wherever W2SD
touches them here (checked against A1111 v1.10.1 82a973c0 and Forge dfdcbab6):

- modules/sd_samplers_kdiffusion.py: KDiffusionSampler keeps its k-diffusion function in
  `p.sampler.func` and its CFG denoiser in `p.sampler.model_wrap_cfg`; LCM and the timestep
  samplers (DDIM, PLMS, UniPC) are other classes.
- modules/sd_samplers_cfg_denoiser.py: the denoiser's `step` counter picks the prompt-editing
  conds and sets `sampler.last_latent` / `state.current_latent`; the padded-cond warnings flip
  `padded_cond_uncond*` once.
- modules/processing.py: `p.rng` (ImageRNG) draws the sampler's noise; `p.comment` shows a
  message under the image; `p.get_conds_with_caching` encodes prompts with the WebUI's cache.
- modules/prompt_parser.py: SdConditioning, get_(multicond_)learned_conditioning.
- modules/sd_models.py: get_closet_checkpoint_match (names from the WebUI's own list only),
  select_checkpoint (the generation's own checkpoint, also while the refiner is loaded).
- modules/sd_samplers_common.py apply_refiner (A1111 158-202, Forge 166-211), run at the start of
  every CFG denoiser call: once the pass's completed ratio reaches p.refiner_switch_at, it loads
  the refiner checkpoint, re-encodes p's conds and points the denoiser at the new model; which
  passes may switch follows opts.hires_fix_refiner_pass. The ratio is the call's noise level
  (A1111's default) or the count of the sampler's own calls so far over total_steps (A1111's
  option refiner_switch_by_sample_steps; always on Forge): see _completed_ratio.

`a1111.A1111Backend` and `forge.ForgeBackend` both derive from FamilyBackend and add the
answers that differ (uncond skipping, LoRA switching, the second UNet, Forge's hires CFG).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import sys
from typing import Any, Callable, Dict, Iterator, Optional

import torch
from modules import extra_networks, processing, prompt_parser, sd_models, sd_samplers, shared
from modules.sd_samplers_kdiffusion import KDiffusionSampler

from ..base import HIRES, IMG2IMG, TXT2IMG, Backend, Conds, PassInfo
from .checkpoint import CheckpointError

COND_CACHE_ATTR = "w2sd_cond_cache"  # p's attribute: W2SD's own slots in the WebUI's cond cache


class FamilyBackend(Backend):
    """The answers shared by the A1111 and Forge adapters."""

    # -- messages ---------------------------------------------------------------------------
    def warn(self, p, message: str) -> None:
        p.comment(message)
        print(message, file=sys.stderr)

    # -- the pass ---------------------------------------------------------------------------
    def pass_info(self, p) -> PassInfo:
        if is_hires(p):
            kind, name = HIRES, getattr(p, "hr_sampler_name", None) or p.sampler_name
        else:
            kind = IMG2IMG if isinstance(p, processing.StableDiffusionProcessingImg2Img) else TXT2IMG
            name = p.sampler_name
        return PassInfo(kind=kind, sampler_name=name, unsupported=self._unsupported(p, name),
                        cfg_scale=self.pass_cfg(p))

    def pass_cfg(self, p) -> float:
        """The CFG scale of the sampler's own calls in the pass (A1111: one for every pass)."""
        return p.cfg_scale

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
        refiner = _refiner(p)
        if refiner is not None and shared.sd_model.sd_checkpoint_info is refiner:
            return (f"the refiner {refiner.short_title!r} runs this whole pass (it took over in the first pass); "
                    "W2SD reflects only steps of the generation's own checkpoint")
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

    # -- the refiner ------------------------------------------------------------------------
    def steps_before_refiner(self, p, sigmas: torch.Tensor) -> Optional[int]:
        if not _refiner_may_switch(p):
            return None
        # The WebUI's own count of calls: total_steps doubles for second-order samplers
        # (sd_samplers_common.py SamplerData.total_steps), whose steps but the last take two calls.
        config = getattr(p.sampler, "config", None)
        per_step = 2 if config is not None and config.options.get("second_order", False) else 1
        for i in range(len(sigmas) - 1):
            if _switches(p, self._completed_ratio(p, sigmas[i], calls=i * per_step)):
                return i
        return len(sigmas) - 1

    def refiner_due(self, p, sigma) -> bool:
        refiner = _refiner(p)
        if refiner is not None and shared.sd_model.sd_checkpoint_info is refiner:
            return True  # it took over already
        den = p.sampler.model_wrap_cfg
        return _refiner_may_switch(p) and _switches(p, self._completed_ratio(p, sigma, calls=den.step))

    def _completed_ratio(self, p, sigma, calls: int) -> float:
        """apply_refiner's completed ratio for a call at noise level `sigma` after `calls` of the
        sampler's own calls (A1111 sd_samplers_common.py:159-169: by the call's timestep unless
        opts.refiner_switch_by_sample_steps)."""
        den = p.sampler.model_wrap_cfg
        if shared.opts.refiner_switch_by_sample_steps:
            return calls / den.total_steps
        sigmas = den.inner_model.sigmas
        timestep = int(torch.argmin(torch.abs(sigmas - float(sigma))))
        return (999 - timestep) / 1000

    # -- extra calls ------------------------------------------------------------------------
    # Infotext keys A1111's denoiser writes when it skips the uncond batch (ours must not leave them).
    _SKIP_KEYS = ("Skip Early CFG", "NGMS", "NGMS all steps")

    @contextlib.contextmanager
    def extra_call(self, p, role: str) -> Iterator[None]:
        den, sampler = p.sampler.model_wrap_cfg, p.sampler
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.restoring_attributes(den, "step", "padded_cond_uncond", "padded_cond_uncond_v0"))
            stack.enter_context(self.restoring_attributes(sampler, "last_latent"))
            stack.enter_context(self.restoring_attributes(shared.state, "current_latent"))
            stack.enter_context(self.restoring_keys(p.extra_generation_params, *self._SKIP_KEYS))
            # apply_refiner runs in every denoiser call: an extra call must never be the one that switches
            stack.enter_context(self.restoring_attributes(p, "refiner_checkpoint_info"))
            p.refiner_checkpoint_info = None
            p.w2sd_extra_call = role
            try:
                yield
            finally:
                p.w2sd_extra_call = None

    # -- one UNet batch for strong and weak -------------------------------------------------
    def joint_conds(self, p, cond, weak_cond):
        """prompt_parser's MulticondLearnedConditioning (modules/prompt_parser.py of both WebUIs):
        each image's AND-subprompts, then the weak prompt's at weight 0. A weight-0 row adds
        exactly 0 to A1111's combine_denoised and to Forge's weighted sum and its count
        (sampling_function.py calc_cond_uncond_batch), so the result is the call with `cond`."""
        if weak_cond is None:
            return cond
        if len(cond.batch) != len(weak_cond.batch) or not _same_token_counts(cond, weak_cond):
            return None  # reconstruct_multicond_batch would pad the shorter conds: other results
        batch = [list(own) + [prompt_parser.ComposableScheduledPromptConditioning(c.schedules, 0.0) for c in weak]
                 for own, weak in zip(cond.batch, weak_cond.batch)]
        if len({len(entry) for entry in batch}) != 1:
            return None  # Forge pairs subprompts across images by position (condition.py:122-141)
        return prompt_parser.MulticondLearnedConditioning(shape=cond.shape, batch=batch)

    # -- prompts ----------------------------------------------------------------------------
    def encode_conds(self, p, prompt: str, negative_prompt: str) -> Conds:
        hires = is_hires(p)
        own_prompts = p.hr_prompts if hires else p.prompts
        own_negatives = p.hr_negative_prompts if hires else p.negative_prompts

        def other(text, own):
            """The text unless it is no difference: empty, or the pass's own for every image (the
            tags of extra networks and the spaces around the text are no text)."""
            return text if text and any(_without_networks(text).strip() != x.strip() for x in own) else None

        prompt, negative_prompt = other(prompt, own_prompts), other(negative_prompt, own_negatives)
        return Conds(cond=self.encode(p, prompt, negative=False) if prompt else None,
                     uncond=self.encode(p, negative_prompt, negative=True) if negative_prompt else None)

    def encode(self, p, texts, negative: bool):
        """Conds of `texts` (one text for the whole batch, or one per image) for the current pass,
        with the WebUI's own prompt machinery and cond cache (processing.py, setup_conds)."""
        hires = is_hires(p)
        if hires:
            width, height = p.hr_upscale_to_x, p.hr_upscale_to_y
            config = sd_samplers.find_sampler_config(p.hr_sampler_name or p.sampler_name)
            steps = p.hr_second_pass_steps or p.steps
            hires_steps = config.total_steps(steps) if config else steps
            network_data = p.hr_extra_network_data
        else:
            width, height, hires_steps, network_data = p.width, p.height, None, p.extra_network_data
        if isinstance(texts, str):
            texts = [_without_networks(texts)] * len(p.prompts)
        prompts = prompt_parser.SdConditioning(list(texts), is_negative_prompt=negative, width=width, height=height,
                                               **self.conditioning_extras(p, hires))
        function = (prompt_parser.get_learned_conditioning if negative
                    else prompt_parser.get_multicond_learned_conditioning)
        slot = p.__dict__.setdefault(COND_CACHE_ATTR, {}).setdefault((tuple(texts), negative, hires), [None, None])
        return p.get_conds_with_caching(function, prompts, p.firstpass_steps, [slot], network_data, hires_steps)

    def conditioning_extras(self, p, hires: bool) -> Dict[str, Any]:
        """Further SdConditioning arguments of this WebUI for the pass (A1111: none)."""
        return {}

    # -- a second UNet ----------------------------------------------------------------------
    @staticmethod
    def checkpoint_info(name: str):
        """The WebUI's CheckpointInfo for a name of its checkpoint list (never a path), or None when
        it is the loaded checkpoint (no difference: its weak UNet would be the loaded one)."""
        info = sd_models.get_closet_checkpoint_match(name)
        if info is None:
            raise CheckpointError(f"weak_checkpoint {name!r} is not in the WebUI's checkpoint list")
        loaded = getattr(shared.sd_model, "sd_checkpoint_info", None)
        return None if getattr(loaded, "filename", None) == info.filename else info

    # -- diagnostics --------------------------------------------------------------------------
    def state(self) -> Dict[str, Any]:
        patches = {"sampler functions": _functions_fingerprint(), "options": _digest(sorted(
            (k, repr(v)) for k, v in shared.opts.data.items() if k not in _CHECKPOINT_OPTIONS))}
        model = shared.sd_model
        info = getattr(model, "sd_checkpoint_info", None)
        # None, or Forge's FakeInitialModel until the first generation loads a checkpoint (F sd_models.py:385-397)
        patches["checkpoint"] = str(getattr(info, "title", "none loaded"))
        if info is not None:
            patches.update(self.model_state(model))
        return {"backend": self.name, "patches": patches, "caches": self.cache_state()}

    def model_state(self, model) -> Dict[str, str]:
        """The loaded model's items of the fingerprint (the adapter knows where its UNet lives)."""
        return {}

    def cache_state(self) -> Dict[str, str]:
        return {}


# The WebUI's own checkpoint bookkeeping (it rewrites them when it loads a checkpoint, e.g. Forge
# stores "name.safetensors" for "name"); the "checkpoint" item says which one is loaded.
_CHECKPOINT_OPTIONS = ("sd_model_checkpoint", "sd_checkpoint_hash")


def _functions_fingerprint() -> str:
    """The k-diffusion sampler functions the WebUI's samplers call, and KDiffusionSampler's own
    methods: a W2SD wrapper left on any of them changes this."""
    import k_diffusion.sampling
    from modules import sd_samplers_kdiffusion

    names = [entry[1] for entry in sd_samplers_kdiffusion.samplers_k_diffusion if isinstance(entry[1], str)]
    found = [(n, describe(getattr(k_diffusion.sampling, n, None))) for n in names]
    found += [(n, describe(v)) for n, v in sorted(vars(KDiffusionSampler).items()) if callable(v)]
    return _digest(found)


def module_state(unet) -> Dict[str, str]:
    """A UNet module's fingerprint: its weights (a strided sample of every tensor: a merged or
    unmerged LoRA changes it), instance overrides of forward and hooks (ControlNet, LoRA modes)."""
    sample = []
    with torch.no_grad():
        for name, tensor in unet.state_dict().items():
            flat = tensor.detach().reshape(-1)
            picked = flat[:: max(1, flat.numel() // 16)][:16].double().cpu()
            sample.append((name, str(tensor.dtype), tuple(tensor.shape), [float(x) for x in picked]))
    hooks = []
    for name, module in unet.named_modules():
        own = sorted(k for k in ("forward", "_original_forward") if k in vars(module)
                     and not _own_forward(module, vars(module)[k]))
        count = sum(len(getattr(module, h, {}) or {}) for h in ("_forward_hooks", "_forward_pre_hooks"))
        if own or count:
            hooks.append((name, own, count, [describe(vars(module)[k]) for k in own]))
    return {"unet weights": _digest(sample), "unet hooks": _digest(hooks) + f" ({len(hooks)} modules)"}


def _own_forward(module, value) -> bool:
    """An instance attribute that is the module's own class forward bound to it: what
    sd-webui-controlnet's UnetHook.restore leaves (hook.py:1072-1074), the same as none."""
    return getattr(value, "__self__", None) is module and getattr(value, "__func__", None) is type(module).forward


def describe(value) -> str:
    """What it is, and whether W2SD wraps it: a function by name and identity (the same object
    within one process), any other object by its type (a checkpoint reload makes new model objects)."""
    if value is None:
        return "None"
    wrapped = " (W2SD wrapper)" if hasattr(value, "w2sd_original") else ""
    function = getattr(value, "__func__", value)
    if inspect.isfunction(function) or inspect.isbuiltin(function):
        return f"{function.__module__}.{function.__qualname__}@{id(function):x}{wrapped}"
    return f"{type(value).__module__}.{type(value).__qualname__}{wrapped}"


def _digest(value) -> str:
    import hashlib

    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def _same_token_counts(*conds) -> bool:
    """Every schedule of every subprompt has the same number of tokens (SDXL: of its crossattn)."""
    def tokens(entry):
        c = entry.cond
        return tuple((c["crossattn"] if isinstance(c, dict) else c).shape)

    counts = {tokens(entry) for multicond in conds for prompts in multicond.batch
              for composable in prompts for entry in composable.schedules}
    return len(counts) == 1


def is_hires(p) -> bool:
    """The pass about to sample is the hires-fix second pass."""
    return bool(getattr(p, "is_hr_pass", False))


def _without_networks(text: str) -> str:
    """The text the text encoder sees: <lora:...> and other extra-network tags are not text."""
    return extra_networks.parse_prompts([text])[0][0]


def _refiner(p):
    """The refiner's CheckpointInfo, or None: no refiner, or the generation's own checkpoint (which
    apply_refiner never switches to)."""
    info = getattr(p, "refiner_checkpoint_info", None)
    return None if info is None or info is sd_models.select_checkpoint() else info


def _refiner_may_switch(p) -> bool:
    """apply_refiner may load the refiner in this pass (A1111 sd_samplers_common.py:177-190, Forge
    174-187): it is not loaded yet, and opts.hires_fix_refiner_pass allows this pass."""
    refiner = _refiner(p)
    if refiner is None or shared.sd_model.sd_checkpoint_info is refiner:
        return False
    if getattr(p, "enable_hr", False):
        which = shared.opts.hires_fix_refiner_pass
        if (which == "first pass" and is_hires(p)) or (which == "second pass" and not is_hires(p)):
            return False
    return True


def _switches(p, completed_ratio: float) -> bool:
    """apply_refiner's threshold; without a switch point it switches at the first call."""
    return p.refiner_switch_at is None or completed_ratio >= p.refiner_switch_at
