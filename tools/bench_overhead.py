"""The W2SD wrapper's own overhead, per sampler, measured side by side in one run.

    python tools/bench_overhead.py [--steps 20] [--repeats 7] [--batch 2] [--threads 1] [--profile NAME]

For each sampler the WebUIs list, W2SD (wrap_sampler, reflecting every step but the last of a
`--steps` schedule) and the plain sampler run on the same cheap denoiser, a fixed 3x3 convolution
on a [batch, 4, 32, 32] latent. The plain run is given as many steps as it takes to make the SAME
TOTAL NUMBER OF DENOISER CALLS (counted, not assumed: samplers differ in calls per step, and each
reflection adds two); where no step count matches exactly the nearest is used and the times are
normalised per call. Runs alternate (plain, W2SD, then W2SD, plain, ...), one thread, fixed seeds.

ratio = (W2SD seconds / W2SD calls) / (plain seconds / plain calls), the median over repetitions
of each W2SD run against the plain run beside it (so drifting load on the machine cancels): 1.00
means the wrapper costs nothing beyond its denoiser calls; the target is at most 1.10 on every
sampler. It is given for wall time and for CPU time (steadier on a shared machine), with the
extra CPU microseconds per reflected step. The plain run takes more, smaller steps for the same
calls, so the sampler's own per-step work weighs more on the plain side: LMS (which integrates
its coefficients with scipy at every step) comes out far below 1, and a negative "us/refl" means
the steps W2SD saves outweigh its reflections. SDE samplers get plain Gaussian noise unless
--brownian: their Brownian tree costs milliseconds per query, once per step.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import itertools
import os
import pstats
import statistics
import sys
import time
import warnings
from typing import Callable, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lib_w2sd import wrap_sampler  # noqa: E402
from lib_w2sd.catalog import WEBUI_SAMPLERS, is_fixed_range, sampler_function  # noqa: E402

SIGMA_MIN, SIGMA_MAX = 0.03, 14.6  # SD1.5's range


class CheapDenoiser:
    """D(x, sigma) = conv3x3(x) / (1 + sigma^2): a fixed near-identity convolution, cheap but not
    free (about the cost of a few of the sampler's own elementwise updates)."""

    def __init__(self, seed: int, channels: int = 4):
        g = torch.Generator().manual_seed(seed)
        weight = 0.05 * torch.randn(channels, channels, 3, 3, generator=g)
        weight[:, :, 1, 1] += torch.eye(channels)
        self.weight = weight

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, **_extra_args) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=1) / (1 + sigma.view(-1, 1, 1, 1) ** 2)


class Counting:
    """Counts the calls of a denoiser (used only in the dry runs that size the plain schedule)."""

    def __init__(self, denoiser: Callable):
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.denoiser(*args, **kwargs)


def runner(name: str, w2sd: bool, steps: int, model, weak, x0: torch.Tensor,
           brownian: bool = False) -> Tuple[Callable, Callable]:
    """A no-argument function running one sampling of `steps` steps (DPM fast: `steps` evaluations),
    and the sampler function it calls (wrapped by W2SD when `w2sd`).

    Samplers that take a noise_sampler get k-diffusion's plain Gaussian one unless `brownian`: the
    Brownian tree SDE samplers build by default costs milliseconds per query, once per step, and
    the plain run makes more steps, which would swamp the wrapper's own cost."""
    from k_diffusion.sampling import default_noise_sampler, get_sigmas_karras

    func, options = sampler_function(name)
    if not brownian and "noise_sampler" in inspect.signature(func).parameters:
        options["noise_sampler"] = default_noise_sampler(x0)
    if w2sd:
        func = wrap_sampler(func, weak)
    if is_fixed_range(name):
        schedule = (SIGMA_MIN, SIGMA_MAX, steps)
    else:
        schedule = (get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX),)
    return (lambda: func(model, x0, *schedule, disable=True, **options)), func


def count_calls(name: str, w2sd: bool, steps: int, x0: torch.Tensor) -> int:
    return count_run(name, w2sd, steps, x0)[0]


def count_run(name: str, w2sd: bool, steps: int, x0: torch.Tensor) -> Tuple[int, int]:
    """Denoiser calls of one run, and the number of reflected steps (0 for the plain sampler)."""
    model, weak = Counting(CheapDenoiser(0)), Counting(CheapDenoiser(1))
    run, func = runner(name, w2sd, steps, model, weak, x0)
    torch.manual_seed(0)
    run()
    reflected = len(func.last_report.reflected_steps) if w2sd else 0
    return model.calls + weak.calls, reflected


def matching_plain_steps(name: str, target: int, x0: torch.Tensor) -> Tuple[int, int]:
    """The plain step count whose call count is `target`, or the nearest; and its call count."""
    best = None
    for steps in itertools.count(2):  # from 2: k-diffusion 0.1.1's DPM++ 2M SDE fails on a one-step schedule
        calls = count_calls(name, False, steps, x0)
        if best is None or abs(calls - target) < abs(best[1] - target):
            best = (steps, calls)
        if calls >= target:
            return best


def timed(run: Callable[[], torch.Tensor]) -> Tuple[float, float]:
    """Wall and CPU seconds of one run. With one thread the CPU time is the steadier of the two on a
    shared machine: time spent waiting for a core is not counted."""
    torch.manual_seed(0)  # ancestral and SDE noise: the same draws on every repetition
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench(name: str, steps: int, repeats: int, x0: torch.Tensor, brownian: bool = False) -> dict:
    w2sd_calls, reflected = count_run(name, True, steps, x0)
    plain_steps, plain_calls = matching_plain_steps(name, w2sd_calls, x0)
    model, weak = CheapDenoiser(0), CheapDenoiser(1)
    plain, _ = runner(name, False, plain_steps, model, weak, x0, brownian)
    w2sd, _ = runner(name, True, steps, model, weak, x0, brownian)
    plain(), w2sd()  # warm-up: lazy imports, allocator, Brownian-tree code paths
    times_plain: List[Tuple[float, float]] = []
    times_w2sd: List[Tuple[float, float]] = []
    for r in range(repeats):
        order = ((plain, times_plain), (w2sd, times_w2sd))
        for run, times in order if r % 2 == 0 else reversed(order):
            times.append(timed(run))
    row = {"sampler": name, "plain_steps": plain_steps, "plain_calls": plain_calls, "w2sd_calls": w2sd_calls}
    for clock, k in (("wall", 0), ("cpu", 1)):
        # each repetition's W2SD run is compared with the plain run beside it, so drifting load cancels
        pairs = [(w[k] / w2sd_calls) / (p[k] / plain_calls) for p, w in zip(times_plain, times_w2sd)]
        row.update({f"plain_{clock}": statistics.median(t[k] for t in times_plain),
                    f"w2sd_{clock}": statistics.median(t[k] for t in times_w2sd),
                    f"ratio_{clock}": statistics.median(pairs)})
    # the same in absolute terms: CPU time W2SD spends beyond the plain sampler's cost for its calls
    row["extra_us_per_reflection"] = 1e6 * (row["w2sd_cpu"] - row["plain_cpu"] * w2sd_calls / plain_calls) / reflected
    return row


def denoiser_cost(x0: torch.Tensor, n: int = 200) -> float:
    model, sigma = CheapDenoiser(0), torch.full((x0.shape[0],), 1.0)
    model(x0, sigma)
    start = time.perf_counter()
    for _ in range(n):
        model(x0, sigma)
    return (time.perf_counter() - start) / n


def profile(name: str, steps: int, x0: torch.Tensor, brownian: bool = False, repeats: int = 20):
    """Where a W2SD run's time goes (cProfile: by own time, then cumulative)."""
    model, weak = CheapDenoiser(0), CheapDenoiser(1)
    run, _ = runner(name, True, steps, model, weak, x0, brownian)
    run()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        run()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="W2SD's schedule length (default 20)")
    parser.add_argument("--repeats", type=int, default=15, help="alternating repetitions per side (default 15)")
    parser.add_argument("--batch", type=int, default=2, help="latent batch, as a cond/uncond pair (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steadier timings)")
    parser.add_argument("--samplers", default="all", help="comma-separated WebUI sampler names (default all)")
    parser.add_argument("--brownian", action="store_true",
                        help="keep the SDE samplers' Brownian-tree noise (default: plain Gaussian noise for all)")
    parser.add_argument("--profile", metavar="SAMPLER", help="instead of the table, profile W2SD on one sampler")
    args = parser.parse_args(argv)
    names = list(WEBUI_SAMPLERS) if args.samplers == "all" else [s.strip() for s in args.samplers.split(",")]
    unknown = [s for s in names + [args.profile or "Euler"] if s not in WEBUI_SAMPLERS]
    if unknown:
        parser.error(f"unknown sampler(s) {unknown}; allowed: {', '.join(WEBUI_SAMPLERS)}")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Should have t")  # k-diffusion's own Brownian-tree rounding
    x0 = torch.randn(args.batch, 4, 32, 32, generator=torch.Generator().manual_seed(0)) * SIGMA_MAX
    if args.profile:
        profile(args.profile, args.steps, x0, args.brownian)
        return 0

    noise = "Brownian-tree" if args.brownian else "Gaussian"
    print(f"latent [{args.batch}, 4, 32, 32], {args.threads} thread(s), {noise} sampler noise; W2SD {args.steps} steps "
          f"reflecting all but the last; median of {args.repeats} alternating repetitions; "
          f"denoiser {denoiser_cost(x0) * 1e6:.0f} us/call")
    print(f"{'sampler':18s} {'plain steps':>11s} {'plain calls':>11s} {'W2SD calls':>10s} "
          f"{'plain s':>8s} {'W2SD s':>8s} {'ratio/call':>10s} {'CPU ratio':>9s} {'CPU us/refl':>11s}")
    worst = {"wall": 0.0, "cpu": 0.0}
    for name in names:
        row = bench(name, args.steps, args.repeats, x0, args.brownian)
        exact = "" if row["plain_calls"] == row["w2sd_calls"] else "  (calls differ: per-call ratio)"
        print(f"{name:18s} {row['plain_steps']:11d} {row['plain_calls']:11d} {row['w2sd_calls']:10d} "
              f"{row['plain_wall']:8.4f} {row['w2sd_wall']:8.4f} {row['ratio_wall']:10.3f} {row['ratio_cpu']:9.3f}"
              f" {row['extra_us_per_reflection']:11.0f}{exact}", flush=True)
        worst = {clock: max(worst[clock], row[f"ratio_{clock}"]) for clock in worst}
    verdict = lambda r: "OK" if r <= 1.10 else "ABOVE TARGET"  # noqa: E731
    print(f"worst ratio: wall {worst['wall']:.3f} ({verdict(worst['wall'])}), "
          f"CPU {worst['cpu']:.3f} ({verdict(worst['cpu'])}); target <= 1.10")
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    sys.exit(main())
