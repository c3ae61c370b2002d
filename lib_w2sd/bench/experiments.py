"""What the bench trains, which sampling runs it makes, and how it runs them (cached, in parallel).

Models (all EDM denoisers on the 8x8 digits, class mixes from data.class_mix(skew)):
  strong            trained from scratch on a mildly skewed mix (most/least common class e^1.5 = 4.5x)
  ideal             trained from scratch on the real, balanced mix: the best this architecture does
  weak <skew>       the strong model fine-tuned on a more skewed mix: weak and strong share their
                    ancestry, as a checkpoint and its fine-tune or a base and base+LoRA do
  weak 0 (swapped)  the strong model fine-tuned on the balanced mix: a "weak" closer to the real data
  ... scratch       trained from scratch with another seed: independent models, as in the paper's
                    dataset-difference experiment (Fig. 6-7)
  1-D ..., 2-D ...  the analytic mixtures' exact denoisers (analytic.py), sampled and scored alike

Every run samples the same initial noise for a given seed, so methods are compared on paired
noise; the spread over seeds is reported as +- one standard deviation.
"""

import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from . import analytic, data, models
from .autoguidance import Autoguided
from .cache import Cache, key_of
from .metrics import Judge

REAL = "real data"  # pseudo-model: the training half itself, scored like samples
PLAIN_LABEL = "plain"


@dataclass(frozen=True)
class ModelSpec:
    """One trained denoiser: its class mix, seed and, for a fine-tune, the model it starts from."""

    name: str
    skew: float
    seed: int
    parent: Optional[str] = None


@dataclass(frozen=True)
class RunSpec:
    """One sampling run: `model` sampled with `sampler`, reflected with `weak` unless it is None.

    With `guide`, the sampled denoiser is `model` autoguided by `guide` with weight `guidance`
    (autoguidance.Autoguided), and a reflection's strong model is that autoguided denoiser."""

    model: str
    sampler: str
    steps: int
    seed: int
    weak: Optional[str] = None
    reflect_steps: Optional[int] = None
    strength: float = 1.0
    weak_sigma: str = "start"
    guide: Optional[str] = None
    guidance: float = 1.0


@dataclass(frozen=True)
class BenchConfig:
    """Every setting of a bench run; the models and results it caches are keyed by it."""

    base_train: models.TrainSpec = models.TrainSpec()
    tune_train: models.TrainSpec = models.TrainSpec(steps=1500, lr=1e-3, ema=0.998)
    classifier_epochs: int = 60
    n_samples: int = 2000
    seeds: Tuple[int, ...] = (0, 1, 2)
    steps: int = 20
    samplers: Tuple[str, ...] = ("euler", "dpmpp_2m", "heun")  # tables (a) and (b)
    sweep_samplers: Tuple[str, ...] = ("euler",)  # tables (c) and (d)
    sigma_min: float = 0.01
    sigma_max: float = 10.0
    strong_skew: float = 1.5
    main_weak_skew: float = 3.0
    tuned_skews: Tuple[float, ...] = (1.5, 2.25, 3.0, 4.5, 6.0)
    swapped_skew: float = 0.0
    scratch_weak_skew: float = 3.0
    w2sd_steps_for_calls: Tuple[int, ...] = (7, 10, 20)  # plain runs get as many calls, and these steps
    reflect_steps_sweep: Tuple[Optional[int], ...] = (0, 3, 6, 9, 12, 15, None)  # None: all but last
    strength_sweep: Tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
    gap_sigma_min: float = 1.0  # the "high-noise gap" averages the steps with sigma >= this
    # (e)-(g) W2SD vs autoguidance at equal denoiser calls (lib_w2sd.bench.versus)
    versus_samplers: Tuple[str, ...] = ("euler",)
    versus_budgets: Tuple[int, ...] = (18, 36, 60)  # denoiser calls per sample
    guidance_weights: Tuple[float, ...] = (1.5, 2.0, 2.5, 3.0)
    # W2SD points: (reflections: "most" the budget allows or about "half" that, strength, weak_sigma)
    w2sd_points: Tuple[Tuple[str, float, str], ...] = (
        ("most", 0.5, "start"), ("most", 1.0, "start"), ("most", 1.5, "start"), ("most", 2.0, "start"),
        ("half", 2.0, "start"), ("most", 1.0, "current"))
    # W2SD on top of autoguidance: (guidance weight, strength), most reflections, weak_sigma 'start'
    combo_points: Tuple[Tuple[float, float], ...] = ((1.5, 0.5), (1.5, 1.0))
    pair_guidance: float = 2.0  # autoguidance's weight for the identical and swapped pairs
    tuning_seed: int = 100  # each method's setting is chosen on this seed, reported on `seeds`

    @property
    def main_weak(self) -> str:
        return tuned_name(self.main_weak_skew)

    def model_specs(self) -> List[ModelSpec]:
        """All models, parents before their fine-tunes."""
        s = self.strong_skew
        specs = [ModelSpec("strong", s, 0), ModelSpec("ideal", 0.0, 0),
                 ModelSpec("strong, retrained (scratch)", s, 1),
                 ModelSpec(scratch_name(self.scratch_weak_skew), self.scratch_weak_skew, 1)]
        specs += [ModelSpec(tuned_name(k), k, 1, parent="strong") for k in self.tuned_skews]
        specs.append(ModelSpec(tuned_name(self.swapped_skew), self.swapped_skew, 1, parent="strong"))
        return specs


def tuned_name(skew: float) -> str:
    return f"weak {skew:g}"


def scratch_name(skew: float) -> str:
    return f"weak {skew:g} (scratch)"


FULL = BenchConfig()
QUICK = BenchConfig(
    base_train=models.TrainSpec(width=64, depth=1, steps=150, batch=128),
    tune_train=models.TrainSpec(width=64, depth=1, steps=40, batch=128, lr=1e-3, ema=0.9),
    classifier_epochs=5, n_samples=200, seeds=(0,), steps=6, samplers=("euler",),
    tuned_skews=(1.5, 3.0), w2sd_steps_for_calls=(4,),
    reflect_steps_sweep=(0, 2, None), strength_sweep=(0.0, 1.0),
    versus_budgets=(12, 18, 24), guidance_weights=(2.0,), w2sd_points=(("most", 1.0, "start"),),
    combo_points=((1.5, 0.5),),
)


def sampler_calls(sampler: str, steps: int) -> int:
    """Denoiser calls of a plain k-diffusion run: Heun makes two per step except the last to 0."""
    return 2 * steps - 1 if sampler == "heun" else steps


def w2sd_calls(sampler: str, steps: int) -> int:
    """Every step but the last reflected: one strong and one weak call more per reflected step."""
    return sampler_calls(sampler, steps) + 2 * (steps - 1)


def plain_steps_for(sampler: str, calls: int) -> int:
    """The fewest plain steps that use at least `calls` denoiser calls."""
    steps = 1
    while sampler_calls(sampler, steps) < calls:
        steps += 1
    return steps


class CallCounter:
    """A denoiser that counts its (batched) calls: the unit of compute of the equal-calls table."""

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.calls = 0

    def __call__(self, x, sigma, **extra_args):
        self.calls += 1
        return self.denoiser(x, sigma, **extra_args)


class Runner:
    """Trains (or loads) the models and the judge, and produces (or loads) run results."""

    def __init__(self, cfg: BenchConfig, cache: Cache, log=print):
        self.cfg = cfg
        self.cache = cache
        self.log = log
        self.specs = {m.name: m for m in cfg.model_specs()}
        self._models: Dict[str, models.EDMDenoiser] = {}
        self._digits = None
        self._judge = None
        self._mixture_judges = {}

    @property
    def digits(self) -> data.Digits:
        if self._digits is None:
            self._digits = data.load_digits_split()
        return self._digits

    def model_key(self, name: str) -> str:
        if analytic.is_mixture(name):
            return key_of(*analytic.key_parts(name))
        spec = self.specs[name]
        parent = self.model_key(spec.parent) if spec.parent else None
        train = self.cfg.tune_train if spec.parent else self.cfg.base_train
        return key_of("denoiser", spec.skew, spec.seed, train, parent)

    def model(self, name: str):
        """The named denoiser: an analytic bed's exact one, or trained (from the cache or now, its
        parent first)."""
        if analytic.is_mixture(name):
            return analytic.mixture(name).denoise
        if name in self._models:
            return self._models[name]
        key, spec = self.model_key(name), self.specs[name]
        model = self.cache.load_model(key)
        if model is None:
            parent = self.model(spec.parent) if spec.parent else None
            started = time.time()
            train = self.cfg.tune_train if parent is not None else self.cfg.base_train
            d = self.digits
            model, losses = models.train_denoiser(
                d.train_x, d.train_y, data.class_mix(spec.skew), d.sigma_data, train, spec.seed,
                init=parent)
            self.cache.save_model(key, model)
            self.log(f"  trained {name!r} in {time.time() - started:.0f}s "
                     f"(loss {np.mean(losses[:50]):.3f} -> {np.mean(losses[-200:]):.3f})")
        self._models[name] = model.eval().requires_grad_(False)
        return self._models[name]

    @property
    def judge(self) -> Judge:
        """The classifier-based scorer; the classifier is trained once and cached."""
        if self._judge is None:
            key = key_of("classifier", self.cfg.classifier_epochs)
            clf = self.cache.load_model(key)
            if clf is None:
                clf = models.train_classifier(self.digits.train_x, self.digits.train_y, seed=0,
                                              epochs=self.cfg.classifier_epochs)
                self.cache.save_model(key, clf)
            self._judge = Judge(clf, self.digits.ref_x, data.N_CLASSES)
        return self._judge

    def judge_for(self, model: str):
        """The judge of the model's test bed: the classifier for the digits, the bed's mixture else."""
        bed = analytic.parse(model)
        if bed is None:
            return self.judge
        if bed[0] not in self._mixture_judges:
            self._mixture_judges[bed[0]] = analytic.MixtureJudge(bed[0], self.cfg.n_samples)
        return self._mixture_judges[bed[0]]

    def dim(self, model: str) -> int:
        """Values per sample of the model's test bed."""
        if analytic.is_mixture(model):
            return analytic.mixture(model).means.shape[1]
        return self.digits.train_x.shape[1]

    def classifier_accuracy(self) -> float:
        with torch.no_grad():
            pred = self.judge.classifier(self.digits.ref_x).argmax(1)
        return float((pred == self.digits.ref_y).float().mean())

    def run_key(self, spec: RunSpec) -> str:
        names = [spec.model] + [n for n in (spec.weak, spec.guide) if n]
        model_keys = [REAL if n == REAL else self.model_key(n) for n in names]
        c = self.cfg
        return key_of("run", spec, model_keys, c.n_samples, c.sigma_min, c.sigma_max,
                      c.classifier_epochs, c.gap_sigma_min)

    def result(self, spec: RunSpec) -> dict:
        key = self.run_key(spec)
        result = self.cache.load_result(key)
        if result is None:
            result = self._compute(spec)
            self.cache.save_result(key, result)
        return result

    def _compute(self, spec: RunSpec) -> dict:
        if spec.model == REAL:
            samples, extra = self.digits.train_x, {"calls": 0, "gap": None, "gap_hi": None}
        else:
            samples, extra = self._sample(spec)
        scores = self.judge_for(spec.model).score(samples).to_dict()
        images = samples[:16].clamp(-1, 1).numpy().round(3).tolist()
        return dict(scores, **extra, images=images)

    def _sample(self, spec: RunSpec):
        import k_diffusion.sampling as K

        import lib_w2sd

        sampler = getattr(K, f"sample_{spec.sampler}")
        sigmas = K.get_sigmas_karras(spec.steps, self.cfg.sigma_min, self.cfg.sigma_max)
        gen = torch.Generator().manual_seed(spec.seed)
        x = torch.randn(self.cfg.n_samples, self.dim(spec.model), generator=gen) * sigmas[0]
        strong, weak, guide = (CallCounter(self.model(n)) if n else None
                               for n in (spec.model, spec.weak, spec.guide))
        model = Autoguided(strong, guide, spec.guidance) if guide else strong
        report = None
        with torch.no_grad():
            if weak is None:
                out = sampler(model, x, sigmas, disable=True)
            else:
                wrapped = lib_w2sd.wrap_sampler(
                    sampler, weak, reflect_steps=spec.reflect_steps, strength=spec.strength,
                    weak_sigma=spec.weak_sigma)
                out = wrapped(model, x, sigmas, disable=True)
                report = wrapped.last_report
        calls = sum(c.calls for c in (strong, weak, guide) if c)
        return out, {"calls": calls, **self._gaps(report)}

    def _gaps(self, report) -> dict:
        """The engine's gap (mean over measured steps) and the same mean over high-noise steps."""
        if report is None or report.gap is None:
            return {"gap": None, "gap_hi": None}
        return {"gap": report.gap, "gap_hi": report.gap_above(self.cfg.gap_sigma_min)}


# ----------------------------------------------------------------------------- the experiments


@dataclass
class Row:
    """One line of a table: a label, one run per seed, and fixed columns (e.g. the weak's skew).

    `tuning` holds runs that are made but never reported: they choose a method's setting, so the
    reported seeds are not the ones the choice was made on."""

    label: str
    specs: Tuple[RunSpec, ...]
    info: dict = field(default_factory=dict)
    tuning: Tuple[RunSpec, ...] = ()


@dataclass
class Experiment:
    """One table (and figure): its letter in the issue, a title, rows and a footnote."""

    key: str
    title: str
    rows: List[Row]
    note: str = ""


def _per_seed(cfg: BenchConfig, **fields) -> Tuple[RunSpec, ...]:
    return tuple(RunSpec(seed=s, **fields) for s in cfg.seeds)


def equal_steps(cfg: BenchConfig) -> Experiment:
    """(a) strong vs weak vs W2SD vs ideal at the same number of sampler steps (Fig. 6-7)."""
    rows = []
    for smp in cfg.samplers:
        run = dict(sampler=smp, steps=cfg.steps)
        rows += [Row(f"{smp}: strong", _per_seed(cfg, model="strong", **run)),
                 Row(f"{smp}: weak ({cfg.main_weak})", _per_seed(cfg, model=cfg.main_weak, **run)),
                 Row(f"{smp}: W2SD", _per_seed(cfg, model="strong", weak=cfg.main_weak, **run)),
                 Row(f"{smp}: ideal model", _per_seed(cfg, model="ideal", **run))]
    rows.append(Row("real data (training half)", (RunSpec(REAL, "-", 0, 0),)))
    return Experiment("a", f"Equal steps ({cfg.steps}): strong vs weak vs W2SD vs ideal", rows,
                      f"W2SD: weak = {cfg.main_weak}, every step but the last reflected. The real "
                      "data row scores the training half (fewer images than a run's samples).")


def equal_calls(cfg: BenchConfig) -> Experiment:
    """(b) W2SD vs plain sampling given the same number of denoiser calls (Fig. 13)."""
    rows = []
    for smp in cfg.samplers:
        budgets = [plain_steps_for(smp, w2sd_calls(smp, n)) for n in cfg.w2sd_steps_for_calls]
        for n in sorted(set(cfg.w2sd_steps_for_calls) | set(budgets)):
            rows.append(Row(f"{smp}: plain, {n} steps",
                            _per_seed(cfg, model="strong", sampler=smp, steps=n),
                            {"method": PLAIN_LABEL, "sampler": smp}))
        for n in cfg.w2sd_steps_for_calls:
            rows.append(Row(f"{smp}: W2SD, {n} steps",
                            _per_seed(cfg, model="strong", sampler=smp, steps=n, weak=cfg.main_weak),
                            {"method": "W2SD", "sampler": smp}))
    return Experiment("b", "Equal denoiser calls: W2SD vs plain sampling with more steps", rows,
                      "A reflected step adds a strong and a weak call: W2SD with n steps costs "
                      "3n - 2 calls (Euler, DPM++ 2M) or 4n - 3 (Heun). Every reflected step "
                      "restarts the sampler, so DPM++ 2M loses its history there and W2SD + "
                      "DPM++ 2M equals W2SD + Euler.")


def weak_sweep(cfg: BenchConfig) -> Experiment:
    """(c) gain vs the size of the weak-to-strong difference, with the gap diagnostic (Fig. 11-12)."""
    weaks = [("identical (weak = strong)", "strong", 0.0)]
    weaks += [(f"tuned, {tuned_name(k)}", tuned_name(k), k - cfg.strong_skew)
              for k in cfg.tuned_skews]
    weaks.append((f"swapped, {tuned_name(cfg.swapped_skew)}", tuned_name(cfg.swapped_skew),
                  cfg.swapped_skew - cfg.strong_skew))
    weaks += [("scratch, strong retrained", "strong, retrained (scratch)", 0.0),
              (f"scratch, {tuned_name(cfg.scratch_weak_skew)}", scratch_name(cfg.scratch_weak_skew),
               cfg.scratch_weak_skew - cfg.strong_skew)]
    rows = [Row(f"{smp}: strong alone", _per_seed(cfg, model="strong", sampler=smp, steps=cfg.steps),
                {"sampler": smp, "weak_model": None})
            for smp in cfg.sweep_samplers]
    for smp in cfg.sweep_samplers:
        for label, weak, diff in weaks:
            rows.append(Row(f"{smp}: {label}",
                            _per_seed(cfg, model="strong", sampler=smp, steps=cfg.steps, weak=weak),
                            {"sampler": smp, "weak_model": weak, "skew_diff": diff}))
    return Experiment("c", "Gain vs the weak-to-strong difference (W2SD on the strong model)", rows,
                      "skew diff = weak skew - strong skew (0: same data; < 0: the 'weak' is closer "
                      "to the real data). gap: the engine's report.gap; gap hi: the same mean over "
                      f"steps with sigma >= {cfg.gap_sigma_min:g}.")


def knobs(cfg: BenchConfig) -> Experiment:
    """(d) gain vs how many steps are reflected, vs strength, and vs where the weak model looks."""
    rows = []
    base = dict(model="strong", steps=cfg.steps, weak=cfg.main_weak)
    for smp in cfg.sweep_samplers:
        for k in cfg.reflect_steps_sweep:
            label = "all but the last" if k is None else f"first {k}"
            rows.append(Row(f"{smp}: reflect {label}",
                            _per_seed(cfg, sampler=smp, reflect_steps=k, **base),
                            {"sampler": smp, "knob": "reflect_steps",
                             "value": cfg.steps - 1 if k is None else k}))
        for s in cfg.strength_sweep:
            rows.append(Row(f"{smp}: strength {s:g}", _per_seed(cfg, sampler=smp, strength=s, **base),
                            {"sampler": smp, "knob": "strength", "value": s}))
        for ws in ("start", "next", "current"):
            rows.append(Row(f"{smp}: weak_sigma {ws}", _per_seed(cfg, sampler=smp, weak_sigma=ws, **base),
                            {"sampler": smp, "knob": "weak_sigma", "value": ws}))
    return Experiment("d", "Gain vs reflect steps, strength and weak_sigma", rows,
                      f"weak = {cfg.main_weak}; reflect first k = the first k of the {cfg.steps} steps; "
                      "all but the last is the paper's default.")


def all_experiments(cfg: BenchConfig) -> List[Experiment]:
    return [equal_steps(cfg), equal_calls(cfg), weak_sweep(cfg), knobs(cfg)]


# ----------------------------------------------------------------------------- running


_WORKER: Optional[Runner] = None


def quiet_known_warnings() -> None:
    """k-diffusion imports clip, which imports the deprecated pkg_resources: not ours to fix."""
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def _worker_init(cfg: BenchConfig, root) -> None:
    global _WORKER
    quiet_known_warnings()
    torch.set_num_threads(1)
    _WORKER = Runner(cfg, Cache(root), log=lambda msg: print(msg, flush=True))


def _worker_train(name: str) -> str:
    _WORKER.model(name)
    return name


def _worker_result(spec: RunSpec) -> dict:
    return _WORKER.result(spec)


def _parallel_map(fn, items, runner: Runner, jobs: int):
    global _WORKER
    if jobs <= 1 or len(items) <= 1:
        _WORKER = runner
        return [fn(item) for item in items]
    # spawn, not fork: forking a process that has used torch's thread pools can deadlock
    ctx, init = get_context("spawn"), (runner.cfg, runner.cache.root)
    with ProcessPoolExecutor(jobs, ctx, _worker_init, init) as pool:
        return list(pool.map(fn, items, chunksize=1))


def train_all(runner: Runner, jobs: int) -> None:
    """Train the missing models, from-scratch ones first, then the fine-tunes of them."""
    specs = runner.cfg.model_specs()
    for generation in ([s for s in specs if s.parent is None], [s for s in specs if s.parent]):
        missing = [s.name for s in generation
                   if runner.cache.load_model(runner.model_key(s.name)) is None]
        if missing:
            runner.log(f"training {len(missing)} model(s): {', '.join(missing)}")
            _parallel_map(_worker_train, missing, runner, jobs)


def run_all(runner: Runner, experiments: List[Experiment], jobs: int) -> Dict[RunSpec, dict]:
    """Every run of the experiments, from the cache where possible, the rest in `jobs` processes."""
    specs = list(dict.fromkeys(s for e in experiments for r in e.rows for s in r.specs + r.tuning))
    results = {s: runner.cache.load_result(runner.run_key(s)) for s in specs}
    missing = [s for s, r in results.items() if r is None]
    if missing:
        runner.log(f"sampling {len(missing)} run(s) ({len(specs) - len(missing)} cached)")
        results.update(zip(missing, _parallel_map(_worker_result, missing, runner, jobs)))
    return results


def describe(cfg: BenchConfig) -> str:
    """One paragraph naming the settings a reader needs to interpret the tables."""
    return (f"{cfg.n_samples} samples per run, seeds {list(cfg.seeds)} (mean ± std over seeds, "
            f"paired noise), Karras sigmas {cfg.sigma_min:g}..{cfg.sigma_max:g}; class-mix skew: "
            f"strong {cfg.strong_skew:g}, main weak {cfg.main_weak_skew:g} (0 = the real balance); "
            f"denoiser: {cfg.base_train.width}x{cfg.base_train.depth} residual MLP, "
            f"{cfg.base_train.steps} training steps (fine-tunes {cfg.tune_train.steps}).")
