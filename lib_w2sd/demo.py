"""The embedded default: the paper's analytic experiments (Fig. 4 and 5), with nothing downloaded.

    python -m lib_w2sd.demo [--out DIR] [--samplers all | "Euler,DPM++ 2M"] [--seed N]

Exact Gaussian-mixture denoisers (lib_w2sd.mixtures) play the ideal, strong and weak models, and the
real k-diffusion samplers run them, plain and wrapped by `wrap_sampler`. The demo prints the mode
masses each method reaches and writes one figure (DIR/w2sd_demo.png): trajectories and densities of
the strong, weak, W2SD and ideal samplers on a 1-D two-peak mixture and a 2-D five-mode ring.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .catalog import WEBUI_SAMPLERS, is_fixed_range, sampler_function
from .mixtures import GaussianMixture, paper_1d, paper_2d
from .sampler import wrap_sampler

SIGMA_MIN, SIGMA_MAX = 0.02, 20.0  # W2SD.md's analytic check: Karras sigmas 0.02..20
DEFAULT_SAMPLERS = ("Euler", "Euler a", "Heun", "LMS", "DPM++ 2M", "DPM++ 2M SDE")
TRAJECTORY_SAMPLER = "Euler"  # the figure's sampler: deterministic, the paper's DDIM in sigma space
PLOTTED = ("strong", "weak", "W2SD", "ideal")
COLORS = {"strong": "tab:red", "weak": "tab:blue", "W2SD": "tab:purple", "ideal": "tab:green"}

# Each method: (which model samples, which denoiser the reflection inverts with, or None for no W2SD).
# The reflection always denoises with the sampling model (wrap_sampler's default strong).
METHODS: Dict[str, Tuple[str, Optional[str]]] = {
    "ideal": ("ideal", None),
    "strong": ("strong", None),
    "weak": ("weak", None),
    "W2SD": ("strong", "weak"),
    "W2SD weak=strong": ("strong", "strong"),  # no weak-to-strong difference: (nearly) plain strong
    "swapped": ("weak", "strong"),  # roles exchanged everywhere (S2WD): pushes away from the data
}


@dataclass(frozen=True)
class Experiment:
    """One analytic test bed: three mixtures over the same modes, differing only in weights."""

    name: str
    ideal: GaussianMixture
    strong: GaussianMixture
    weak: GaussianMixture
    mode_names: Sequence[str]

    def model(self, role: str) -> GaussianMixture:
        return {"ideal": self.ideal, "strong": self.strong, "weak": self.weak}[role]


STRANDED_STDS = 4.0  # a sample farther than this many stds from every mode sits between modes


@dataclass
class ExperimentResult:
    experiment: Experiment
    masses: Dict[str, Dict[str, torch.Tensor]] = field(default_factory=dict)  # sampler -> method -> per mode
    stranded: Dict[str, Dict[str, float]] = field(default_factory=dict)  # sampler -> method -> fraction
    paths: Dict[str, torch.Tensor] = field(default_factory=dict)  # method -> [steps + 1, n, dim], VP scale

    def total_variation(self, sampler: str, method: str) -> float:
        """Distance of a method's mode masses from the ideal weights: 0 is perfect, 1 disjoint."""
        return 0.5 * float((self.masses[sampler][method] - self.experiment.ideal.weights).abs().sum())


def stranded_fraction(mix: GaussianMixture, x: torch.Tensor) -> float:
    """Share of samples farther than STRANDED_STDS stds from every mode: left between modes."""
    distance = torch.cdist(x.reshape(x.shape[0], -1).to(torch.float64), mix.means).min(1).values
    return float((distance > STRANDED_STDS * mix.std).double().mean())


@dataclass
class DemoResult:
    one_d: ExperimentResult
    two_d: ExperimentResult
    table: str
    figure: Optional[str]


def experiments() -> Tuple[Experiment, Experiment]:
    ideal, strong, weak = paper_1d()
    one_d = Experiment("1-D", ideal, strong, weak, ("left", "right"))
    ideal, strong, weak = paper_2d()
    two_d = Experiment("2-D", ideal, strong, weak, tuple("ABCDE"))
    return one_d, two_d


def sample(exp: Experiment, sampler_name: str, method: str, n: int, steps: int, seed: int,
           record: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Draw n samples with one sampler and method; with `record`, also the path of every sample
    (the latent at each step's start, then the result) in the variance-preserving scale
    x / sqrt(1 + sigma^2), which keeps sigma 20's wide noise and the data on one axis."""
    func, options = sampler_function(sampler_name)
    sampling_role, inverting_role = METHODS[method]
    model = exp.model(sampling_role).denoise
    if inverting_role is not None:
        func = wrap_sampler(func, exp.model(inverting_role).denoise)
    dim = exp.ideal.means.shape[1]
    x = torch.randn(n, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * SIGMA_MAX
    path: List[torch.Tensor] = []

    def callback(info):
        path.append(info["x"] / (1 + float(info["sigma"]) ** 2) ** 0.5)

    kwargs = dict(options, disable=True, callback=callback if record else None)
    # Ancestral and SDE samplers draw from the global generator: fork it so the caller's stays as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if is_fixed_range(sampler_name):
            out = func(model, x, SIGMA_MIN, SIGMA_MAX, steps, **kwargs)
        else:
            sigmas = _karras(steps)
            out = func(model, x, sigmas, **kwargs)
    return out, (torch.stack(path + [out]) if record else None)


def _karras(steps: int) -> torch.Tensor:
    from k_diffusion.sampling import get_sigmas_karras

    return get_sigmas_karras(steps, SIGMA_MIN, SIGMA_MAX).to(torch.float64)


def run_experiment(exp: Experiment, samplers: Sequence[str], n: int, steps: int, seed: int,
                   n_paths: int = 0) -> ExperimentResult:
    """Mode masses of every method on every sampler; paths of the first n_paths samples on the
    figure's sampler."""
    result = ExperimentResult(exp)
    for sampler_name in samplers:
        masses, stranded = result.masses[sampler_name], result.stranded[sampler_name] = {}, {}
        for method in METHODS:
            record = n_paths > 0 and sampler_name == TRAJECTORY_SAMPLER and method in PLOTTED
            out, path = sample(exp, sampler_name, method, n, steps, seed, record)
            masses[method] = exp.ideal.mode_masses(out)
            stranded[method] = stranded_fraction(exp.ideal, out)
            if record:
                result.paths[method] = path
    return result


def format_table(one_d: ExperimentResult, two_d: ExperimentResult, n_1d: int, n_2d: int, steps: int) -> str:
    e1, e2 = one_d.experiment, two_d.experiment

    def w(mix: GaussianMixture) -> str:
        return "/".join(f"{float(v):.2f}" for v in mix.weights)

    lines = [
        f"{steps} steps, Karras sigmas {SIGMA_MIN}..{SIGMA_MAX:g} (DPM fast: {steps} evaluations over the same "
        "range, on its own grid); W2SD reflects every step but the last.",
        "",
        f"1-D mixture (paper Fig. 4): peaks at -2 / +2, std {e1.ideal.std}, {n_1d} samples. "
        "Mass of the LEFT peak (ideal 0.50):",
        f"  weights ideal {w(e1.ideal)}, strong {w(e1.strong)}, weak {w(e1.weak)}",
    ]
    lines += _rows(one_d, lambda s, m: f"{float(one_d.masses[s][m][0]):.3f}")
    lines += [
        "",
        f"2-D mixture (paper Fig. 5): 5 modes A-E on a ring, std {e2.ideal.std}, {n_2d} samples. "
        "Total variation of the mode masses from the ideal weights (0 is ideal, lower is better):",
        f"  weights ideal {w(e2.ideal)}, strong {w(e2.strong)}, weak {w(e2.weak)}",
    ]
    lines += _rows(two_d, lambda s, m: f"{two_d.total_variation(s, m):.3f}")
    lines += ["", f"2-D: share of samples stranded between modes (> {STRANDED_STDS:g} std from every mode):"]
    lines += _rows(two_d, lambda s, m: f"{100 * two_d.stranded[s][m]:.1f}%")
    if TRAJECTORY_SAMPLER in two_d.masses:
        lines += ["", f"2-D mode masses with {TRAJECTORY_SAMPLER} (modes {' / '.join(e2.mode_names)}):"]
        for method, masses in two_d.masses[TRAJECTORY_SAMPLER].items():
            lines.append(f"  {method:18s} " + " ".join(f"{float(v):.3f}" for v in masses))
    return "\n".join(lines)


def _rows(result: ExperimentResult, cell) -> List[str]:
    widths = [max(len(m), 6) for m in METHODS]
    header = f"  {'sampler':18s}" + " ".join(f"{m:>{wd}s}" for m, wd in zip(METHODS, widths))
    rows = [header]
    for s in result.masses:
        rows.append(f"  {s:18s}" + " ".join(f"{cell(s, m):>{wd}s}" for m, wd in zip(METHODS, widths)))
    return rows


def plot(one_d: ExperimentResult, two_d: ExperimentResult, path: str, steps: int, n_paths: int) -> str:
    """One PNG: for each experiment, a few trajectories per method and the resulting densities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(24, 11), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.25]})
    _plot_1d(one_d, axes[0], steps, n_paths)
    _plot_2d(two_d, axes[1], n_paths)
    fig.suptitle(
        f"W2SD on exact Gaussian mixtures (paper Fig. 4 and 5): {TRAJECTORY_SAMPLER}, {steps} steps, "
        f"Karras sigmas {SIGMA_MIN}..{SIGMA_MAX:g}; W2SD = strong sampler + reflection "
        "(strong denoise, weak inversion) on every step but the last",
        fontsize=13,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plot_1d(result: ExperimentResult, axes, steps: int, n_paths: int):
    exp = result.experiment
    masses = result.masses[TRAJECTORY_SAMPLER]
    mode_colors = ("tab:orange", "tab:cyan")
    for ax, method in zip(axes, PLOTTED):
        path = result.paths[method][:, :n_paths, 0]  # [steps + 1, n_paths]
        final_mode = exp.ideal.component_of(path[-1].reshape(-1, 1))
        for j in range(path.shape[1]):
            ax.plot(range(len(path)), path[:, j], color=mode_colors[int(final_mode[j])], lw=0.9, alpha=0.7)
        ax.set_title(f"1-D {method}\nleft-peak mass {float(masses[method][0]):.2f}", color=COLORS[method])
        ax.set_xlabel(f"step (sigma {SIGMA_MAX:g} -> 0)")
        ax.set_ylabel("x / sqrt(1 + sigma^2)")
        ax.set_xlim(0, steps)
        ax.set_xticks(range(0, steps + 1, max(1, steps // 10)))
        ax.set_ylim(-3.5, 3.5)
        ax.axhline(-2, color="gray", lw=0.5, ls=":")
        ax.axhline(2, color="gray", lw=0.5, ls=":")
    axes[0].plot([], [], color=mode_colors[0], label="ends in the left peak")
    axes[0].plot([], [], color=mode_colors[1], label="ends in the right peak")
    axes[0].legend(loc="upper left", fontsize=9)

    ax = axes[4]
    bins = torch.linspace(-3.5, 3.5, 71)
    for method in PLOTTED:
        final = result.paths[method][-1, :, 0]
        ax.hist(final.numpy(), bins=bins.numpy(), density=True, histtype="step", lw=1.8, color=COLORS[method],
                label=f"{method} (left {float(masses[method][0]):.2f})")
    grid = torch.linspace(-3.5, 3.5, 400, dtype=torch.float64)
    ax.plot(grid.numpy(), _density_1d(exp.ideal, grid).numpy(), "k--", lw=1, label="ideal density (exact)")
    ax.set_title("1-D densities of the final samples\n(ideal left-peak mass 0.5)")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize=9)


def _density_1d(mix: GaussianMixture, grid: torch.Tensor) -> torch.Tensor:
    z = (grid[:, None] - mix.means[:, 0][None]) / mix.std
    return (mix.weights[None] * torch.exp(-0.5 * z**2)).sum(1) / (mix.std * (2 * torch.pi) ** 0.5)


def _plot_2d(result: ExperimentResult, axes, n_paths: int):
    exp = result.experiment
    grid = torch.linspace(-4, 4, 161, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    sq = ((torch.stack([gx, gy], -1)[..., None, :] - exp.ideal.means) ** 2).sum(-1)  # [161, 161, K]
    density = (exp.ideal.weights * torch.exp(-0.5 * sq / exp.ideal.std**2)).sum(-1)
    for ax, method in zip(axes, PLOTTED):
        path = result.paths[method]
        final = path[-1]
        ax.contour(gx.numpy(), gy.numpy(), density.numpy(), levels=4, colors="gray", linewidths=0.6)
        ax.scatter(final[:, 0].numpy(), final[:, 1].numpy(), s=3, alpha=0.25, color=COLORS[method])
        for j in range(min(n_paths, path.shape[1])):
            ax.plot(path[:, j, 0].numpy(), path[:, j, 1].numpy(), color="black", lw=0.7, alpha=0.7)
            ax.plot(path[0, j, 0], path[0, j, 1], "o", color="black", ms=2.5)
        for name, (mx, my) in zip(exp.mode_names, exp.ideal.means.tolist()):
            ax.annotate(name, (mx * 1.3, my * 1.3), ha="center", va="center", fontsize=12, weight="bold")
        tv = result.total_variation(TRAJECTORY_SAMPLER, method)
        stranded = 100 * result.stranded[TRAJECTORY_SAMPLER][method]
        ax.set_title(f"2-D {method}\nTV from ideal {tv:.3f}, between modes {stranded:.1f}%", color=COLORS[method])
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
        ax.set_aspect("equal")
        ax.set_xlabel("x1 / sqrt(1 + sigma^2)")
        ax.set_ylabel("x2 / sqrt(1 + sigma^2)")
    axes[0].plot([], [], color="black", lw=0.7, label="paths (dot: start at sigma 20)")
    axes[0].plot([], [], "o", color="tab:red", ms=3, label="final samples")
    axes[0].legend(loc="lower left", fontsize=8)

    ax = axes[4]
    masses = result.masses[TRAJECTORY_SAMPLER]
    k = len(exp.mode_names)
    width = 0.8 / len(PLOTTED)
    for j, method in enumerate(PLOTTED):
        xs = [i + (j - (len(PLOTTED) - 1) / 2) * width for i in range(k)]
        ax.bar(xs, masses[method].numpy(), width=width, color=COLORS[method], label=method)
    ax.axhline(0.2, color="black", ls="--", lw=1, label="ideal weight 0.2")
    ax.set_xticks(range(k))
    ax.set_xticklabels([f"mode {n}" for n in exp.mode_names])
    ax.set_ylabel("fraction of samples")
    ax.set_title("2-D mode masses\n(the weak model has almost no E)")
    ax.legend(fontsize=9)


@contextlib.contextmanager
def _one_thread():
    """The demo's tensors are tiny: extra intra-op threads only contend (on a busy 2-core machine,
    torch.cdist on [4000, 2] took 60 ms with 2 threads and 0.4 ms with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_demo(out_dir: Optional[str] = "out", samplers: Sequence[str] = DEFAULT_SAMPLERS, n_1d: int = 4000,
             n_2d: int = 2000, steps: int = 20, seed: int = 0, n_paths: int = 40) -> DemoResult:
    """Run both experiments, write the figure into out_dir (None: no figure) and return the table."""
    unknown = [s for s in samplers if s not in WEBUI_SAMPLERS]
    if unknown:
        raise ValueError(f"unknown sampler(s) {unknown}; allowed: {', '.join(WEBUI_SAMPLERS)}")
    samplers = list(dict.fromkeys([TRAJECTORY_SAMPLER, *samplers]))  # the figure needs its sampler
    one_d_exp, two_d_exp = experiments()
    with _one_thread(), warnings.catch_warnings():
        # k-diffusion's SDE samplers query their Brownian tree a rounding error outside its range
        # (exp(-log(sigma)) != sigma); the plain samplers warn the same way, so it is noise here.
        warnings.filterwarnings("ignore", message="Should have t", module="torchsde")
        one_d = run_experiment(one_d_exp, samplers, n_1d, steps, seed, n_paths)
        two_d = run_experiment(two_d_exp, samplers, n_2d, steps, seed, n_paths // 3)
    figure = None
    if out_dir is not None:
        figure = plot(one_d, two_d, os.path.join(out_dir, "w2sd_demo.png"), steps, n_paths)
    return DemoResult(one_d, two_d, format_table(one_d, two_d, n_1d, n_2d, steps), figure)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib_w2sd.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out", help="folder for w2sd_demo.png (default: out)")
    parser.add_argument("--samplers", default=",".join(DEFAULT_SAMPLERS),
                        help=f"comma-separated WebUI sampler names, or 'all' (default: {','.join(DEFAULT_SAMPLERS)})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    samplers = list(WEBUI_SAMPLERS) if args.samplers == "all" else [s.strip() for s in args.samplers.split(",")]
    try:
        result = run_demo(args.out, samplers, seed=args.seed)
    except ValueError as error:
        parser.error(str(error))
    print(result.table)
    print(f"\nfigure: {result.figure}")
    return 0


if __name__ == "__main__":
    # k-diffusion's clip-anytorch dependency warns about pkg_resources on import; not ours to fix.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    sys.exit(main())
