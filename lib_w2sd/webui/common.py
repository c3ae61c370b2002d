"""What W2SD does the same way in every WebUI: from validated W2SDParams to a wrapped sampler
on each sampling pass, warnings, the error policy, and restoring everything afterwards.

scripts/w2sd.py calls three functions:
  start(p, params_or_error, backend)   in Script.process
  before_sampling(p)                   in Script.process_before_every_sampling (every pass)
  finish(p)                            in Script.postprocess (skipped by the WebUI on errors:
                                       every change made for a pass is undone when that pass's
                                       sampler call ends, so finish only tidies up)

The weak and strong denoisers are the pass's own CFG denoiser called with changed inputs
(base.Variant), each call inside Backend.extra_call so the sampler's counters never move.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import W2SDError
from ..params import W2SDParams
from ..sampler import schedule_sigmas, wrap_sampler
from ..schedule import reflected_steps
from . import rows
from .base import HIRES, STRONG, WEAK, Backend, PassInfo, Variant
from .surface import settings

ATTR = "w2sd_run"  # where a generation's Run lives on p
WARNING_KEY = "W2SD warning"
# Below this gap the weak model is, for the reflections, the strong one (README, "Reading the gap").
NEAR_ZERO_GAP = 1e-3
NO_CONTROLNET_EXTENSION = ("the ControlNet difference needs the ControlNet extension (sd-webui-controlnet on "
                           "AUTOMATIC1111), which is not loaded: the ControlNet difference is left out")


class W2SDFailure(W2SDError):
    """Raised from the sampler call to fail a generation when the setting w2sd_on_error is 'fail'
    (the WebUI swallows exceptions raised by script hooks, so this is the only way to stop it)."""


@dataclass
class Run:
    """One generation's W2SD state."""

    backend: Backend
    params: Optional[W2SDParams]
    settings_error: Optional[Exception] = None  # bad settings: no pass of this generation reflects
    warnings: List[str] = field(default_factory=list)
    reflected: Dict[str, str] = field(default_factory=dict)  # pass kind -> "reflected/total"
    before_refiner: Dict[str, str] = field(default_factory=dict)  # pass kind -> "reflected/asked", cut by the refiner
    gaps: Dict[str, Tuple[float, Optional[float]]] = field(default_factory=dict)  # pass kind -> (mean, high)
    unets: Dict[str, Any] = field(default_factory=dict)  # weak checkpoint name -> handle


# -- the three entry points ---------------------------------------------------------------------
def start(p, params: Optional[W2SDParams], backend: Backend, error: Optional[Exception] = None) -> Optional[Run]:
    """Begin a generation: params are the validated settings (None with `error` when they were
    bad). Returns the Run, or None when no pass reflects (W2SD off, nothing to reflect, or a
    WebUI W2SD cannot run in)."""
    # A failed generation skips postprocess: apply the memory policy it missed (a no-op otherwise).
    backend.release_unets(generation_ended=True)
    if error is None and (params is None or not params.enabled):
        return None
    run = Run(backend=backend, params=params)
    if backend.unsupported is not None:  # no adapter for this WebUI: plain, with its one sentence
        _warn(p, run, backend.unsupported)
        return None
    setattr(p, ATTR, run)
    if error is not None:
        run.settings_error = error
        _problem(p, run, error)
        return run
    # The hires keys only where a hires pass runs (img2img has none).
    shown = params if getattr(p, "enable_hr", False) else dataclasses.replace(params, hires=False)
    p.extra_generation_params.update(shown.to_infotext())
    for notice in params.notices():
        _warn(p, run, notice)
    if not params.has_difference():  # weak == strong: reflections would only cost time
        setattr(p, ATTR, None)
        return None
    return run


def before_sampling(p) -> None:
    """Install W2SD on the pass about to sample, or leave the pass plain (with a warning when
    W2SD was asked for and cannot run)."""
    run: Optional[Run] = getattr(p, ATTR, None)
    if run is None:
        return
    backend = run.backend
    backend.uninstall(p)  # img2img reuses its sampler; a failed pass may have left a wrapper
    if run.settings_error is not None:
        _refuse(p, run, run.settings_error)
        return
    info = backend.pass_info(p)
    if info.kind == HIRES and not run.params.hires:
        return
    if info.unsupported:
        _problem(p, run, W2SDError(info.unsupported), f"in the {info.kind} pass")
        _refuse(p, run, W2SDError(info.unsupported))
        return
    try:
        weak, strong = _variants(p, run, info)
    except Exception as error:  # noqa: BLE001 - any failure to prepare is reported per the policy
        _problem(p, run, error, "could not prepare the weak model")
        _refuse(p, run, error)
        return
    if weak.changes_nothing() and strong.changes_nothing():
        _warn(p, run, f"in the {info.kind} pass the weak model equals the strong one (its CFG, prompts, LoRA "
                      "multipliers and checkpoint are the generation's own): nothing reflected; make the weak "
                      "model weaker")
        return
    backend.install(p, lambda original: _guarded(p, run, info, original, weak, strong))


def _refuse(p, run: Run, error: Exception) -> None:
    """The pass cannot reflect: under 'fail' make its sampler call fail; else leave it plain."""
    if settings.on_error() == "fail":
        run.backend.install(p, lambda original: _failing(original, error))


def finish(p) -> None:
    """End of a generation: take any wrapper off, apply the memory policy, forget the Run."""
    run: Optional[Run] = getattr(p, ATTR, None)
    if run is None:
        return
    try:
        run.backend.uninstall(p)
        run.backend.release_unets(generation_ended=True)
    finally:
        setattr(p, ATTR, None)


# -- building the denoisers ---------------------------------------------------------------------
def _variants(p, run: Run, info: PassInfo):
    params, backend = run.params, run.backend
    kinds = [kind for kind in params.kinds() if not _refused(p, run, kind)]
    conds = None
    if "prompt" in kinds:
        conds = backend.encode_conds(p, params.weak_prompt, params.weak_negative_prompt)
        conds = None if conds.cond is None and conds.uncond is None else conds
    lora_weak = lora_strong = None
    if "lora" in kinds:
        own = backend.prompt_loras(p)
        if own:
            lora_weak = _lora_difference(params.weak_lora_multiplier, own)
            lora_strong = _lora_difference(params.strong_lora_multiplier, own)
        else:
            _warn(p, run, f"no LoRA in the {info.kind} prompt: the LoRA difference is left out")
    unet = None
    if "checkpoint" in kinds:
        unet = run.unets.get(params.weak_checkpoint)
        if unet is None:
            unet = run.unets[params.weak_checkpoint] = backend.load_unet(params.weak_checkpoint)
    control_weak = control_strong = None
    if "controlnet" in kinds:
        units = backend.controlnet_units(p)
        if units:
            control_weak, control_strong = params.weak_controlnet_weight, params.strong_controlnet_weight
        else:
            _warn(p, run, NO_CONTROLNET_EXTENSION if units is None else
                  f"no active ControlNet unit in the {info.kind} pass: the ControlNet difference is left out")
    weak = Variant(WEAK, cond_scale=_cfg_difference(params.weak_cfg, info), conds=conds, lora_multiplier=lora_weak,
                   unet=unet, controlnet_multiplier=control_weak)
    strong = Variant(STRONG, cond_scale=_cfg_difference(params.strong_cfg, info), lora_multiplier=lora_strong,
                     controlnet_multiplier=control_strong)
    return weak, strong


# How a warning names each kind of W2SDParams.kinds().
KIND_NAMES = {"cfg": "CFG", "prompt": "weak prompt", "lora": "LoRA", "checkpoint": "weak checkpoint",
              "controlnet": "ControlNet"}


def _refused(p, run: Run, kind: str) -> bool:
    """The WebUI cannot run `kind` (Backend.refuses): warn that it is left out."""
    reason = run.backend.refuses(p, kind)
    if reason is not None:
        _warn(p, run, f"{reason}: the {KIND_NAMES[kind]} difference is left out")
    return reason is not None


def _cfg_difference(scale: Optional[float], info: PassInfo) -> Optional[float]:
    """The CFG scale of a call, or None when it is the pass's own (no difference)."""
    return None if scale is None or scale == info.cfg_scale else scale


def _lora_difference(multiplier: Optional[float], own: Dict[str, float]) -> Optional[float]:
    """The multiplier a call runs the prompt's LoRAs at, or None when that is no difference: every
    LoRA already runs at it (the call then runs the model as the sampler does, bit for bit)."""
    return None if multiplier is None or all(m == multiplier for m in own.values()) else multiplier


def make_denoiser(backend: Backend, p, variant: Variant) -> Callable:
    """D(x, sigma, **extra_args): the pass's CFG denoiser run as `variant` says, invisible to the
    sampler's counters."""

    def denoise(x, sigma, **extra_args):
        args = _variant_args(variant, extra_args)
        with _variant_call(backend, p, variant, args):
            return backend.cfg_denoiser(p)(x, sigma, **args)

    denoise.variant = variant
    return denoise


def make_joint_denoiser(backend: Backend, p, strong: Variant, weak: Variant) -> Optional[Callable]:
    """J(x, sigma, **extra_args) -> (D_s, D_w) in one UNet batch (rows.py), for a weak variant that
    differs from the strong one only in CFG scale and/or prompt; None for any other pair (weights,
    or a weak negative prompt, whose uncond rows would have to pass for cond rows).
    A step whose conds cannot share a batch (Backend.joint_conds) makes the two calls."""
    if strong.changes_weights() or weak.changes_weights() or strong.conds is not None:
        return None
    weak_prompt = weak.conds is not None and weak.conds.cond is not None
    if weak.conds is not None and weak.conds.uncond is not None:
        return None
    separate = make_denoiser(backend, p, strong), make_denoiser(backend, p, weak)
    shared_conds: Dict[int, Any] = {}  # id(the pass's cond) -> the cond serving both

    def joint(x, sigma, **extra_args):
        strong_args, weak_args = _variant_args(strong, extra_args), _variant_args(weak, extra_args)
        cond = strong_args["cond"]
        if id(cond) not in shared_conds:
            shared_conds[id(cond)] = backend.joint_conds(p, cond, weak_args["cond"] if weak_prompt else None)
        both = shared_conds[id(cond)]
        if both is None:
            return tuple(denoise(x, sigma, **extra_args) for denoise in separate)
        den, cache = backend.cfg_denoiser(p), rows.RowCache()
        with _variant_call(backend, p, strong, strong_args), backend.unet_rows(p, cache, record=True):
            d_strong = den(x, sigma, **dict(strong_args, cond=both))
        with _variant_call(backend, p, weak, weak_args), backend.unet_rows(p, cache, record=False):
            d_weak = den(x, sigma, **weak_args)
        return d_strong, d_weak

    return joint


def _variant_args(variant: Variant, extra_args: dict) -> dict:
    """The den call's arguments for `variant`: the sampler's extra_args with its changes."""
    args = dict(extra_args)
    if variant.cond_scale is not None:
        args["cond_scale"] = variant.cond_scale
    if variant.conds is not None:
        args.update({k: v for k, v in variant.conds._asdict().items() if v is not None})
    return args


@contextlib.contextmanager
def _variant_call(backend: Backend, p, variant: Variant, args: dict):
    """Around one den call as `variant`: an extra call for the sampler's counters, with its LoRA
    multiplier, its UNet, its ControlNet weights, and no uncond batch at scale 1."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(backend.extra_call(p, variant.role))
        if variant.lora_multiplier is not None:
            stack.enter_context(backend.lora_multiplier(p, variant.lora_multiplier))
        if variant.unet is not None:
            stack.enter_context(backend.use_unet(p, variant.unet))
        if variant.controlnet_multiplier is not None:  # after use_unet: the units of the UNet that runs
            stack.enter_context(backend.controlnet_multiplier(p, variant.controlnet_multiplier))
        if float(args.get("cond_scale", 0)) == 1.0:
            stack.enter_context(backend.cond_only(p))
        yield


# -- the installed sampler function ----------------------------------------------------------------
def _guarded(p, run: Run, info: PassInfo, original: Callable, weak: Variant, strong: Variant) -> Callable:
    """The function installed as the pass's sampler: W2SD inside a try/finally that puts every
    changed thing back, and the error policy around it."""
    backend, params = run.backend, run.params
    signature = inspect.signature(original)
    hires = info.kind == HIRES

    def sampler(*args, **kwargs):
        arguments = signature.bind(*args, **kwargs).arguments
        sigmas = arguments.get("sigmas")
        n_steps = len(sigmas) - 1 if sigmas is not None else int(arguments.get("n", 0))
        rng_state = backend.sampling_state(p)
        asked, before_refiner = params.steps_for(n_steps, hires=hires), None
        try:
            levels = schedule_sigmas(original, *args, **kwargs)
            before_refiner = backend.steps_before_refiner(p, levels)  # None: no refiner switch in this pass
            stop = None if before_refiner is None else lambda i, sigma: backend.refiner_due(p, sigma)
            with contextlib.ExitStack() as stack:
                if weak.lora_multiplier is not None or strong.lora_multiplier is not None:
                    stack.enter_context(backend.lora_session(p))
                wrapped = wrap_sampler(
                    original, make_denoiser(backend, p, weak), strong=make_denoiser(backend, p, strong),
                    joint=make_joint_denoiser(backend, p, strong, weak),
                    reflect_steps=asked if before_refiner is None else min(asked, before_refiner),
                    strength=params.strength, reflections=params.reflections, weak_sigma=params.weak_sigma,
                    gap_probes=1, stop=stop,
                )
                result = wrapped(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - W2SD's own failure; interrupts (BaseException) pass
            message = _problem(p, run, error, f"failed in the {info.kind} pass")
            if settings.on_error() == "fail":
                raise W2SDFailure(f"W2SD: {message}") from error
            rng_state()  # the plain rerun draws the same noise a plain pass would
            return original(*args, **kwargs)
        finally:
            backend.release_unets(generation_ended=False)
        report = wrapped.last_report
        run.reflected[info.kind] = f"{len(report.reflected_steps)}/{n_steps}"
        if before_refiner is not None:
            _note_refiner(p, run, info.kind, len(report.reflected_steps), len(reflected_steps(levels, asked)))
        if report.gap is not None:
            run.gaps[info.kind] = (report.gap, report.gap_high)
            _check_gap(p, run, info.kind)
        _write_diagnostics(p, run)
        return result

    sampler.__signature__ = signature
    sampler.w2sd_original = original
    return sampler


def _failing(original: Callable, error: Exception) -> Callable:
    """Installed instead of the sampler under the 'fail' policy: stops the generation with the
    message of the problem found before sampling."""

    def sampler(*args, **kwargs):
        raise W2SDFailure(f"W2SD: {error} (setting 'When W2SD cannot run' is 'fail')") from error

    sampler.__signature__ = inspect.signature(original)
    sampler.w2sd_original = original
    return sampler


# -- messages ---------------------------------------------------------------------------------------
def _problem(p, run: Run, error: Exception, context: str = "") -> str:
    """Record a W2SD problem as one sentence (shown to the user, after "W2SD: "; under 'fallback'
    the pass runs plain); returns the message."""
    message = str(error) if isinstance(error, W2SDError) else f"{type(error).__name__}: {error}"
    fallback = settings.on_error() != "fail"
    message = (f"{context}: " if context else "") + message + (" (generated without W2SD)" if fallback else "")
    _warn(p, run, message)
    return message


def _warn(p, run: Run, message: str) -> None:
    if message in run.warnings:
        return
    run.warnings.append(message)
    run.backend.warn(p, "W2SD: " + message)
    p.extra_generation_params[WARNING_KEY] = "; ".join(run.warnings)


def _note_refiner(p, run: Run, kind: str, reflected: int, asked: int) -> None:
    """The refiner took over in this pass and the reflections stopped at the switch: say so when
    that left out some of the `asked` steps (those W2SD would have reflected without the refiner);
    warn when it left nothing."""
    if reflected < asked:
        run.before_refiner[kind] = f"{reflected}/{asked}"
    if reflected == 0 and asked > 0:
        _warn(p, run, f"the refiner takes over at the first step of the {kind} pass: nothing was reflected "
                      "(W2SD reflects only the steps before the refiner switch; switch later to reflect)")


def _check_gap(p, run: Run, kind: str) -> None:
    """Warn when the reflections change almost nothing: the gap near zero at high noise and over
    all reflected steps. A high-noise gap of 0 beside a clear mean is a WebUI rule, not the models:
    Forge Classic runs the first step of a pass at CFG 1, for W2SD's calls too (C
    sd_samplers_cfg_denoiser.py:126-127), so a short hires pass can have no other step at sigma >= 1."""
    mean, high = run.gaps[kind]
    gap = max(mean, high) if high is not None else mean
    if gap < NEAR_ZERO_GAP:
        _warn(p, run, f"in the {kind} pass the weak and strong models barely differ (gap {gap:.2g} < "
                      f"{NEAR_ZERO_GAP:g}): reflections change almost nothing; make the weak model weaker "
                      "(a lower weak CFG, a LoRA multiplier further from the prompt's, another checkpoint, a "
                      "lower weak ControlNet weight)")


def _write_diagnostics(p, run: Run) -> None:
    """Infotext keys per pass: "W2SD reflected" (reflected/total steps), "W2SD gap" (mean over the
    reflected steps), "W2SD gap high" (over those at sigma >= 1) and, when the refiner switch left
    out asked steps, "W2SD before refiner" (reflected/asked); the hires pass's keys say
    "W2SD hires ...". Diagnostics only: pasting an infotext does not read them."""
    for kind, text in run.reflected.items():
        p.extra_generation_params[_key(kind, "reflected")] = text
    for kind, text in run.before_refiner.items():
        p.extra_generation_params[_key(kind, "before refiner")] = text
    for kind, (mean, high) in run.gaps.items():
        p.extra_generation_params[_key(kind, "gap")] = f"{mean:.4g}"
        if high is not None:
            p.extra_generation_params[_key(kind, "gap high")] = f"{high:.4g}"


def _key(kind: str, name: str) -> str:
    return "W2SD " + ("hires " if kind == HIRES else "") + name
