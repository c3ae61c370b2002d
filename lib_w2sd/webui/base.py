"""The adapter interface: the few questions each WebUI answers so that W2SD can run inside it.

`lib_w2sd.webui.common` does everything that is the same in every WebUI (turning W2SDParams
into weak and strong denoisers, installing the wrapper, warnings, the error policy); an
adapter (`a1111.A1111Backend`, `forge.ForgeBackend`, `old_forge.OldForgeBackend`, all on
`family.FamilyBackend`) answers only what differs. The adapters are the only code that imports the WebUI's `modules`;
`lib_w2sd.webui.detect_backend()` picks one.

Words used below
  p          the WebUI's processing object (StableDiffusionProcessing*) of the generation.
  pass       one sampling call: txt2img, the hires-fix second pass, or img2img (inpainting too).
  den        the pass's own CFG denoiser (`p.sampler.model_wrap_cfg` in both WebUIs), called as
             den(x, sigma, cond=, uncond=, cond_scale=, s_min_uncond=, image_cond=) -> denoised.
             Every W2SD model call goes through it, so masks, the inpainting blend, SDXL's dict
             conds, ControlNet and other extensions' hooks apply to reflections too.
  extra call a denoiser call W2SD adds (a reflection's strong or weak call). The sampler never
             sees it: counters the WebUI advances per call are saved and restored around it.

Contract for every context manager here: it restores what it changed in `finally`, also on
InterruptedException (a BaseException) and errors, and restores exactly (same objects, same
option values, same keys present), so that a plain generation after W2SD is bit-identical
to one before it.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Dict, Iterator, NamedTuple, Optional

# The passes a backend reports, in the words the infotext and warnings use.
TXT2IMG, HIRES, IMG2IMG = "txt2img", "hires", "img2img"

# Roles of an extra call; `p.w2sd_extra_call` holds the role during the call (None otherwise) so
# that other extensions' CFG callbacks can tell W2SD's calls from the sampler's own.
WEAK, STRONG = "weak", "strong"


class Conds(NamedTuple):
    """Conditioning in the WebUI's own form: what the sampler's extra_args hold under 'cond'
    (A1111: MulticondLearnedConditioning) and 'uncond' (list of ScheduledPromptConditioning).
    Prompt editing schedules are inside: the CFG denoiser picks the entry for its step.
    None in a field: keep the generation's own (the pass's extra_args)."""

    cond: Any
    uncond: Any


@dataclass(frozen=True)
class Variant:
    """One W2SD denoiser: the pass's CFG denoiser with some of its inputs changed.

    None in a field means "as the generation has it"."""

    role: str  # WEAK or STRONG
    cond_scale: Optional[float] = None  # CFG scale of this call
    conds: Optional[Conds] = None  # conditioning of another prompt (Backend.encode_conds)
    lora_multiplier: Optional[float] = None  # the prompt's LoRAs all at this multiplier
    unet: Any = None  # a handle from Backend.load_unet: run this UNet instead
    controlnet_multiplier: Optional[float] = None  # every active ControlNet unit's weight times this

    def changes_nothing(self) -> bool:
        return self.cond_scale is None and self.conds is None and not self.changes_weights()

    def changes_weights(self) -> bool:
        """The call runs other model weights than the sampler's own (a LoRA multiplier, another
        UNet, the ControlNet units at another weight): it cannot share a batch with a call of the
        generation's own model."""
        return self.lora_multiplier is not None or self.unet is not None or self.controlnet_multiplier is not None


@dataclass
class PassInfo:
    """What the backend knows about the pass that is about to sample."""

    kind: str  # TXT2IMG, HIRES or IMG2IMG
    sampler_name: str
    unsupported: Optional[str] = None  # why W2SD cannot reflect this pass (it then runs plain)
    cfg_scale: Optional[float] = None  # the CFG scale of the sampler's own calls in this pass


class Backend(abc.ABC):
    """The questions one WebUI answers. One instance per WebUI process (see detect_backend)."""

    name: str = "?"
    # Set where W2SD cannot run in this WebUI at all (adapters/unsupported.py): one sentence naming
    # the WebUI; every generation with W2SD enabled then runs plain and shows it.
    unsupported: Optional[str] = None

    # -- messages -------------------------------------------------------------------------------
    @abc.abstractmethod
    def warn(self, p, message: str) -> None:
        """Show `message` to the user of this generation (UI comment and console); the caller
        also writes it into the infotext."""

    def refuses(self, p, kind: str) -> Optional[str]:
        """Why this WebUI cannot run the weak-model difference `kind` (a W2SDParams.kinds() name:
        cfg, prompt, lora, checkpoint, controlnet) in the current pass, as one sentence naming the
        WebUI; None when it can. Called in process_before_every_sampling: a refused kind is left out
        with that sentence as a warning, the other kinds still reflect."""
        return None

    # -- the pass -----------------------------------------------------------------------------
    @abc.abstractmethod
    def pass_info(self, p) -> PassInfo:
        """Called in process_before_every_sampling, when p.sampler exists. `unsupported` is set
        for samplers or set-ups W2SD runs plain (timestep samplers, DPM adaptive, LCM, a pass
        the refiner runs from its first step, ...)."""

    @abc.abstractmethod
    def install(self, p, wrap: Callable[[Callable], Callable]) -> None:
        """Replace the pass's k-diffusion sampler function by wrap(original). Idempotent: a
        sampler already carrying a W2SD wrapper is rewrapped from its original (img2img keeps
        one sampler for the whole job, hires creates a new one)."""

    @abc.abstractmethod
    def uninstall(self, p) -> None:
        """Put the original sampler function back if a W2SD wrapper is on it; no-op otherwise."""

    @abc.abstractmethod
    def cfg_denoiser(self, p) -> Callable:
        """The pass's CFG denoiser (den above)."""

    @abc.abstractmethod
    def sampling_state(self, p) -> Callable[[], None]:
        """Called as the pass's sampler call starts: snapshot what that call consumes (the noise
        generators of p.rng, den's counters, the sampler's last latent). The returned function
        restores the snapshot, so that a W2SD run that failed can be redone plain with the very
        noise a plain run would have drawn."""

    # -- the refiner ----------------------------------------------------------------------------
    @abc.abstractmethod
    def steps_before_refiner(self, p, sigmas) -> Optional[int]:
        """Called as the pass's sampler call starts, with the levels of its steps (step i from
        sigmas[i] to sigmas[i + 1]): when the WebUI's refiner takes over in the middle of this pass,
        the number of first steps whose own model call comes before the switch (by the WebUI's
        own switch rule); None when no switch happens in this pass. Only those steps may reflect:
        their reflections run on the generation's own model."""

    @abc.abstractmethod
    def refiner_due(self, p, sigma) -> bool:
        """Asked before each reflection of a pass with a switch: True when the sampler's next own
        call (at `sigma`) switches to the refiner, or it already did. The safety net behind
        steps_before_refiner for samplers whose number of model calls per step varies."""

    # -- extra calls --------------------------------------------------------------------------
    @abc.abstractmethod
    def extra_call(self, p, role: str) -> ContextManager[None]:
        """Around one extra call: save and restore what the CFG denoiser changes per call
        (A1111: den.step, sampler.last_latent, state.current_latent, infotext keys it adds),
        keep the refiner switch out of it (an extra call never triggers the switch), and set
        p.w2sd_extra_call = role."""

    @abc.abstractmethod
    def cond_only(self, p) -> ContextManager[bool]:
        """Make the next den call run the conditional batch only (the call's CFG scale is 1, so
        the unconditional pass would be wasted). Yields False where the WebUI cannot skip it;
        the call then runs at cond_scale 1 with both passes."""

    # -- one UNet batch for a reflection's strong and weak calls (rows.py) ------------------------
    @abc.abstractmethod
    def joint_conds(self, p, cond: Any, weak_cond: Any) -> Any:
        """The `cond` of one den call whose UNet batch holds the rows of a call with `cond` AND
        those of a call with `weak_cond` (None: the same cond): cond's subprompts as they are,
        weak_cond's added at weight 0, so the call's result is still the one with `cond`. None when
        the two cannot share a batch (other token counts; a model whose CFG needs a fixed layout)."""

    @abc.abstractmethod
    def unet_rows(self, p, cache, record: bool) -> ContextManager[None]:
        """Route the UNet evaluations of the enclosed den call through `cache` (rows.RowCache):
        record their output rows, or answer batches whose rows were recorded (rows.routed)."""

    @abc.abstractmethod
    def encode_conds(self, p, prompt: str, negative_prompt: str) -> Conds:
        """Conds of another prompt pair for the current pass, made by the WebUI's own prompt
        machinery (emphasis, [a:b:n] editing with the pass's steps, BREAK, embeddings, SDXL's
        two encoders, the pass's width/height). "", or the pass's own text, means the
        generation's own prompt (or negative prompt): that field of the result is None. Encoded once per generation and
        pass size; later calls are cached.
        Called before sampling starts (in process_before_every_sampling)."""

    # -- LoRA -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def prompt_loras(self, p) -> Dict[str, float]:
        """The LoRAs the prompt activated for the current pass: name -> UNet multiplier (empty: none)."""

    @abc.abstractmethod
    def lora_session(self, p) -> ContextManager[None]:
        """Around a whole pass's sampling with a LoRA difference: prepare cheap switching
        (A1111: the functional LoRA mode) and restore the LoRA state exactly afterwards."""

    @abc.abstractmethod
    def lora_multiplier(self, p, multiplier: float) -> ContextManager[None]:
        """Inside lora_session: run the enclosed UNet calls with every prompt LoRA at
        `multiplier` (UNet part only; the text encoder has already run)."""

    # -- a second UNet --------------------------------------------------------------------------
    @abc.abstractmethod
    def load_unet(self, name: str) -> Any:
        """A handle on the UNet of the checkpoint `name` (a name of the WebUI's checkpoint list,
        never a path), or None when `name` is the loaded checkpoint itself: safetensors only,
        same architecture as the loaded model (else a W2SDError saying what differs), cached
        across generations by file and hash, kept per the setting w2sd_checkpoint_memory.
        Called in process_before_every_sampling."""

    @abc.abstractmethod
    def use_unet(self, p, handle: Any) -> ContextManager[None]:
        """Run the enclosed den calls with the UNet of `handle`."""

    @abc.abstractmethod
    def release_unets(self, generation_ended: bool) -> None:
        """Apply the memory policy: after a pass (generation_ended False) or a generation
        (True): 'gpu' keeps the weak UNet on the device, 'offload' moves it to the CPU, 'unload'
        drops it. Never touches the WebUI's own model."""

    # -- ControlNet ------------------------------------------------------------------------------
    @abc.abstractmethod
    def controlnet_units(self, p) -> Optional[int]:
        """How many ControlNet units (IP-Adapter, reference and the other unit kinds of the
        WebUI's ControlNet extension included) act on the current pass's UNet calls and can be
        scaled per call; 0: none. None: this WebUI has no ControlNet extension loaded.
        Called in process_before_every_sampling, after the ControlNet extension set its units up."""

    @abc.abstractmethod
    def controlnet_multiplier(self, p, multiplier: float) -> ContextManager[None]:
        """Run the enclosed den calls with every active unit's weight times `multiplier`, exactly
        as if the user had set those weights; 0 runs them without the units (their models are not
        evaluated at all where the extension allows). Restored exactly after each call."""

    # -- diagnostics ------------------------------------------------------------------------------
    def state(self) -> Dict[str, Any]:
        """A read-only fingerprint of everything W2SD patches, for GET /w2sd/v1/state:
        {"backend", "patches": {item: short text}, "caches": {item: short text}}. Between
        generations `patches` must be the same before and after any W2SD generation (a soak compares
        them); `caches` is what W2SD keeps on purpose (the weak UNet per the memory policy)."""
        return {"backend": self.name, "patches": {}, "caches": {}}

    # -- helpers shared by adapters -----------------------------------------------------------
    @staticmethod
    @contextlib.contextmanager
    def restoring_attributes(obj, *names: str) -> Iterator[None]:
        """Save obj's attributes `names` and put them back (same objects) afterwards."""
        saved = {name: getattr(obj, name) for name in names}
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(obj, name, value)

    @staticmethod
    @contextlib.contextmanager
    def restoring_keys(mapping: dict, *keys: str) -> Iterator[None]:
        """Save the entries `keys` of a dict (present or absent) and restore them afterwards."""
        missing = object()
        saved = {key: mapping.get(key, missing) for key in keys}
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is missing:
                    mapping.pop(key, None)
                else:
                    mapping[key] = value
