"""wrap_sampler(): run any k-diffusion-style sampler with W2SD reflections on chosen steps.

The sampler is not rewritten. The schedule is cut into runs that each start at a reflected
step (see schedule.segments); before such a run the latent is reflected, then the sampler
itself takes the run's steps. So every sampler of the convention works, including ones this
module has never seen (A1111's Restart sampler), and the normal steps are exactly the
sampler's own.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from .errors import InvalidOption, UnsupportedSampler
from .reflection import WEAK_SIGMAS, Denoiser, JointDenoiser, reflect
from .schedule import reflected_steps, segments

# Noise levels at and above the data's own scale (SD latents and the bench's models have about
# unit spread): W2SDReport.gap_high averages the gap over these steps.
HIGH_NOISE_SIGMA = 1.0


@dataclass
class W2SDReport:
    """What the last run of a wrapped sampler did."""

    reflected_steps: List[int] = field(default_factory=list)
    strong_calls: int = 0  # extra strong calls made by reflections (and gap probes)
    weak_calls: int = 0
    joint_calls: int = 0  # reflections whose strong and weak estimates came from one joint call
    # (step, sigma, RMS(D_s - D_w) / sigma), kept as tensors while sampling: reading them would
    # make the device wait at every step, so they become numbers only when asked for.
    measured: List[Tuple[int, torch.Tensor, torch.Tensor]] = field(default_factory=list, repr=False)

    @property
    def gaps(self) -> List[Tuple[int, float]]:
        """(step, gap) for every measured step."""
        return [(i, float(g)) for i, _, g in self.measured]

    @property
    def gap(self) -> Optional[float]:
        """Mean weak-to-strong difference over the measured steps; None when nothing was measured."""
        return self.gap_above(0.0)

    @property
    def gap_high(self) -> Optional[float]:
        """The gap over the high-noise steps (sigma >= HIGH_NOISE_SIGMA), where the sample's
        layout is decided and W2SD's reflections matter most; None when no such step was measured.
        It tells pairs apart better than the mean, which low-noise steps dominate (there even two
        models trained alike on the same data differ in detail; README, "Reading the gap")."""
        return self.gap_above(HIGH_NOISE_SIGMA)

    def gap_above(self, sigma_min: float) -> Optional[float]:
        """Mean gap over the measured steps starting at sigma >= sigma_min (None: no such step)."""
        chosen = [g for _, sigma, g in self.measured if float(sigma) >= sigma_min]
        return float(torch.stack(chosen).mean()) if chosen else None


class _SigmasSchedule:
    """k-diffusion's usual convention: f(model, x, sigmas, ...); a run is a slice of sigmas."""

    def __init__(self, arguments: dict):
        self.sigmas = arguments["sigmas"]

    def run_arguments(self, start: int, end: int) -> dict:
        return {"sigmas": self.sigmas[start : end + 1]}


class _DpmFastSchedule:
    """sample_dpm_fast(model, x, sigma_min, sigma_max, n): the fixed grid DPM-Solver-Fast
    builds for itself (k-diffusion's DPMSolver.dpm_solver_fast), so runs can be expressed
    as the same function on a sub-range with the matching number of evaluations."""

    def __init__(self, arguments: dict):
        nfe = int(arguments["n"])
        t_start = -math.log(float(arguments["sigma_max"]))
        t_end = -math.log(float(arguments["sigma_min"]))
        m = nfe // 3 + 1
        self.orders = [3] * (m - 2) + [2, 1] if nfe % 3 == 0 else [3] * (m - 1) + [nfe % 3]
        self.sigmas = torch.linspace(t_start, t_end, m + 1, dtype=torch.float64).neg().exp()

    def run_arguments(self, start: int, end: int) -> dict:
        # A run of third-order steps ends with a second-order one: the only way DPM-Solver-Fast
        # can take exactly end - start steps over the sub-range.
        nfe = sum(self.orders[start:end]) - (self.orders[end - 1] == 3)
        return {"sigma_max": float(self.sigmas[start]), "sigma_min": float(self.sigmas[end]), "n": nfe}


def _schedule_kind(signature: inspect.Signature, name: str):
    params = signature.parameters
    if "sigmas" in params:
        return _SigmasSchedule
    if {"sigma_min", "sigma_max", "n"} <= set(params):
        return _DpmFastSchedule
    raise UnsupportedSampler(
        f"W2SD cannot reflect the sampler '{name}': it has no fixed schedule of steps "
        "(it takes neither 'sigmas' nor 'sigma_min', 'sigma_max' and 'n'; DPM adaptive chooses "
        "its steps as it goes). Use a sampler with a fixed schedule, such as Euler or DPM++ 2M."
    )


def schedule_sigmas(sampler: Callable, *args, **kwargs) -> torch.Tensor:
    """The noise levels of the steps a call sampler(*args, **kwargs) takes, as wrap_sampler numbers
    them (step i goes from sigmas[i] to sigmas[i + 1]; DPM fast: the grid it builds for itself)."""
    sampler = getattr(sampler, "w2sd_original", sampler)
    signature = inspect.signature(sampler)
    arguments = signature.bind(*args, **kwargs).arguments
    return _schedule_kind(signature, getattr(sampler, "__name__", repr(sampler)))(arguments).sigmas


def _builds_brownian_noise(sampler: Callable):
    """The Brownian-tree noise sampler class `sampler` builds for itself when given none, or None.

    SDE samplers build it from the sigmas of their own call; on a sub-range of the schedule that
    would be a different noise path (and warn when queried outside it), so the wrapper builds
    one for the whole schedule instead."""
    code = getattr(inspect.unwrap(sampler), "__code__", None)
    if code is None or "BrownianTreeNoiseSampler" not in code.co_names:
        return None
    return inspect.unwrap(sampler).__globals__.get("BrownianTreeNoiseSampler")


def _check_options(weak, strong, joint, reflect_steps, sigma_window, strength, reflections, weak_sigma, gap_probes,
                   stop):
    def fail(option, allowed, value):
        raise InvalidOption(f"W2SD option '{option}' must be {allowed}; got {value!r}")

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if not callable(weak):
        fail("weak", "a denoiser callable D(x, sigma, **extra_args)", weak)
    if strong is not None and not callable(strong):
        fail("strong", "None or a denoiser callable", strong)
    if joint is not None and not callable(joint):
        fail("joint", "None or a callable J(x, sigma, **extra_args) -> (D_s, D_w)", joint)
    if reflect_steps is not None and not (is_int(reflect_steps) and reflect_steps >= 0):
        fail("reflect_steps", "None or an integer >= 0", reflect_steps)
    if sigma_window is not None:
        ok = isinstance(sigma_window, (tuple, list)) and len(sigma_window) == 2
        if not ok or not 0 <= float(sigma_window[0]) <= float(sigma_window[1]):
            fail("sigma_window", "None or a pair (lo, hi) with 0 <= lo <= hi", sigma_window)
    if not (isinstance(strength, (int, float)) and math.isfinite(strength) and strength >= 0):
        fail("strength", "a finite number >= 0", strength)
    if not (is_int(reflections) and reflections >= 1):
        fail("reflections", "an integer >= 1", reflections)
    if weak_sigma not in WEAK_SIGMAS:
        fail("weak_sigma", f"one of {', '.join(WEAK_SIGMAS)}", weak_sigma)
    if not (is_int(gap_probes) and gap_probes >= 0):
        fail("gap_probes", "an integer >= 0", gap_probes)
    if stop is not None and not callable(stop):
        fail("stop", "None or a callable stop(step, sigma) -> bool", stop)


def _probed(steps: Sequence[int], probes: int) -> set:
    """`probes` of the reflected steps, spread evenly (the middle one when probes == 1)."""
    if not steps or probes <= 0:
        return set()
    k = min(probes, len(steps))
    return {steps[int((j + 0.5) * len(steps) / k)] for j in range(k)}


def wrap_sampler(
    sampler: Callable,
    weak: Denoiser,
    *,
    strong: Optional[Denoiser] = None,
    reflect_steps: Optional[int] = None,
    sigma_window: Optional[Tuple[float, float]] = None,
    strength: float = 1.0,
    reflections: int = 1,
    weak_sigma: str = "start",
    gap_probes: int = 0,
    joint: Optional[JointDenoiser] = None,
    stop: Optional[Callable[[int, torch.Tensor], bool]] = None,
) -> Callable:
    """Return `sampler` with a W2SD reflection before each chosen step.

    sampler       any function of k-diffusion's convention f(model, x, sigmas, extra_args=None,
                  callback=None, disable=None, **options), or DPM fast's (sigma_min, sigma_max, n).
                  A function this returned is unwrapped first: wrapping never stacks.
    weak          the weak denoiser D_w(x, sigma, **extra_args), called with the sampler's extra_args.
    strong        the strong denoiser of the reflection; default: the model the sampler is called with.
    reflect_steps the first N steps are reflected; None: every step but the last (the paper).
    sigma_window  (lo, hi): reflect the steps starting at lo <= sigma <= hi instead.
    strength      scales each reflection's displacement: 0 is the plain sampler, 1 the paper.
    reflections   reflections per reflected step (each adds one strong and one weak call).
    weak_sigma    where the weak model looks during the inversion: 'start' (default: the
                  reflection's starting point and level; weak == strong is an exact identity),
                  'next' (the strong step's landing point at its exact level) or 'current'
                  (the landing point at the starting level, as the official code).
    gap_probes    with 'next'/'current': on this many reflected steps, measure the weak-to-strong
                  gap (one extra strong call each). 'start' measures it on every reflected step
                  for free. Read it from `wrapped.last_report.gap`.
    joint         with 'start': J(x, sigma, **extra_args) -> (D_s, D_w), both estimates from one
                  evaluation (for a strong and weak model that share their weights and differ in
                  their condition: one batched call). It must return what `strong` and `weak`
                  would, to float rounding; 'next'/'current' ignore it (the models read different
                  points there).
    stop          None, or stop(step, sigma) -> bool, asked right before each reflection: True
                  ends the reflections there (the rest of the schedule runs as one sampler call,
                  unreflected). For a caller whose model changes in the middle of sampling (the
                  WebUIs' refiner): reflections must never run on the new model.

    The result has the sampler's signature, shows every step number to `callback` once and in
    order, keeps ancestral and SDE noise continuous over the whole schedule, and stores a
    W2SDReport of each run in `.last_report`. Raises UnsupportedSampler for samplers without a
    fixed schedule (DPM adaptive) and InvalidOption for bad options.
    """
    sampler = getattr(sampler, "w2sd_original", sampler)
    name = getattr(sampler, "__name__", repr(sampler))
    signature = inspect.signature(sampler)
    schedule_kind = _schedule_kind(signature, name)
    _check_options(weak, strong, joint, reflect_steps, sigma_window, strength, reflections, weak_sigma, gap_probes,
                   stop)
    brownian = _builds_brownian_noise(sampler) if "noise_sampler" in signature.parameters else None
    model_name, x_name = list(signature.parameters)[:2]

    reflector = _Reflector(weak, reflections, weak_sigma, strength, joint if weak_sigma == "start" else None)

    @functools.wraps(sampler)
    def wrapped(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        schedule = schedule_kind(arguments)
        steps = reflected_steps(schedule.sigmas, reflect_steps, sigma_window) if strength else []
        report = wrapped.last_report = W2SDReport(reflected_steps=list(steps))
        n_steps = len(schedule.sigmas) - 1
        if not strength or (not steps and not _is_lone_final_step(schedule.sigmas, 0, n_steps)):
            return sampler(*args, **kwargs)

        model, x = arguments[model_name], arguments[x_name]
        extra_args = arguments.get("extra_args") or {}
        reflect_with = strong if strong is not None else model
        if steps and brownian is not None and arguments.get("noise_sampler") is None:
            sigmas = schedule.sigmas
            arguments["noise_sampler"] = brownian(x, sigmas[sigmas > 0].min(), sigmas.max())
        probed, reflected = _probed(steps, gap_probes), set(steps)
        run = _Runs(sampler, signature, x_name, arguments, schedule, model, extra_args)

        with tqdm(total=n_steps, disable=arguments.get("disable")) as bar:
            for start, end in segments(n_steps, steps):
                if start in reflected:
                    if stop is not None and stop(start, schedule.sigmas[start]):
                        report.reflected_steps = [i for i in steps if i < start]
                        return run(x, start, n_steps, bar)
                    x = reflector.step(x, schedule.sigmas, start, reflect_with, extra_args, report, start in probed)
                x = run(x, start, end, bar)
        return x

    wrapped.__signature__ = signature
    wrapped.w2sd_original = sampler
    wrapped.last_report = None
    return wrapped


@dataclass
class _Reflector:
    """The reflection options of one wrapped sampler, applied at one step."""

    weak: Denoiser
    reflections: int
    weak_sigma: str
    strength: float
    joint: Optional[JointDenoiser] = None

    def step(self, x, sigmas, i, strong, extra_args, report: W2SDReport, probe: bool):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        for _ in range(self.reflections):
            outcome = reflect(
                x, sigma, sigma_next, strong, self.weak, extra_args,
                weak_sigma=self.weak_sigma, strength=self.strength, probe_gap=probe, joint=self.joint,
            )
            x = outcome.x
            report.strong_calls += outcome.strong_calls
            report.weak_calls += 1
            report.joint_calls += outcome.joint
            if outcome.gap is not None and (not report.measured or report.measured[-1][0] != i):
                report.measured.append((i, sigma, outcome.gap))
            probe = False  # one measurement per step is enough
        return x


@dataclass
class _Runs:
    """One call of a wrapped sampler: runs the sampler itself over a range of the schedule's steps."""

    sampler: Callable
    signature: inspect.Signature
    x_name: str
    arguments: dict
    schedule: object  # _SigmasSchedule or _DpmFastSchedule
    model: Denoiser
    extra_args: dict

    def __call__(self, x, start: int, end: int, bar):
        callback = _shifted_callback(self.arguments.get("callback"), start, bar)
        sigmas = self.schedule.sigmas
        if _is_lone_final_step(sigmas, start, end):
            return _final_denoise(self.model, x, sigmas[start], self.extra_args, callback)
        run = dict(self.arguments, **self.schedule.run_arguments(start, end))
        run[self.x_name] = x
        if "callback" in run:
            run["callback"] = callback
        if "disable" in run:
            run["disable"] = True  # one progress bar for the whole schedule, not one per run
        return _call(self.sampler, self.signature, run)


def _is_lone_final_step(sigmas, start: int, end: int) -> bool:
    return end - start == 1 and float(sigmas[end]) == 0.0


def _final_denoise(model, x, sigma, extra_args, callback):
    """A call of one step ending at sigma 0 has one answer for every sampler of the family:
    with no history and no noise left to add, each takes the first-order step to 0, which is
    the denoised estimate itself. Computing it here spares samplers that trip over such a call
    (k-diffusion 0.1.1's DPM++ 2M SDE reads a step size it never set)."""
    denoised = model(x, sigma * x.new_ones([x.shape[0]]), **extra_args)
    callback({"x": x, "i": 0, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})
    return denoised


def _shifted_callback(callback, offset: int, bar):
    """The run's step numbers start at 0; the caller must see the schedule's own numbers."""

    def shifted(info):
        info = dict(info, i=info["i"] + offset)
        bar.update(1)
        if callback is not None:
            callback(info)

    return shifted


def _call(sampler, signature, arguments: dict):
    if all(p.kind is p.POSITIONAL_OR_KEYWORD or p.kind is p.KEYWORD_ONLY for p in signature.parameters.values()):
        return sampler(**arguments)  # the common case, without rebinding
    bound = inspect.BoundArguments(signature, arguments)
    return sampler(*bound.args, **bound.kwargs)
