"""PNG figures of the four experiments (matplotlib, no display needed)."""

from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from . import data
from .experiments import PLAIN_LABEL, Experiment, Row, RunSpec
from .tables import METRICS, mean_std, values
from .versus import METHODS, chosen


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> None:
    """Lay out, write and close one figure (pyplot keeps every open figure otherwise)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _errorbar(ax, rows: List[Row], results, x, metric: str, **kw):
    stats = np.array([mean_std(values(r, results, metric)) for r in rows])
    kw.setdefault("marker", "o")
    ax.errorbar(x, stats[:, 0], yerr=np.nan_to_num(stats[:, 1]), capsize=3, **kw)


def samples_and_classes(exp: Experiment, results: Dict[RunSpec, dict], path: Path) -> None:
    """(a) a few samples of each method, and the predicted class histograms."""
    plt = _plt()
    rows = [r for r in exp.rows if r.label.startswith(exp.rows[0].label.split(":")[0])]
    rows.append(exp.rows[-1])  # the real data
    fig = plt.figure(figsize=(3 * len(rows), 6.5))
    for j, row in enumerate(rows):
        images = data.to_images(torch.tensor(results[row.specs[0]]["images"]))
        ax = fig.add_subplot(2, len(rows), j + 1)
        grid = images[:16].reshape(4, 4, 8, 8).transpose(0, 2, 1, 3).reshape(32, 32)
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(row.label, fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(2, 1, 2)
    width = 0.8 / len(rows)
    for j, row in enumerate(rows):
        hist = np.mean([results[s]["hist"] for s in row.specs], axis=0)
        ax.bar(np.arange(data.N_CLASSES) + j * width, hist, width, label=row.label)
    ax.set_xticks(np.arange(data.N_CLASSES) + 0.4 - width / 2, [str(c) for c in range(10)])
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("share of samples")
    ax.legend(fontsize=8)
    _save(plt, fig, path)


def equal_calls(exp: Experiment, results, samplers, path: Path) -> None:
    """(b) closeness vs denoiser calls: W2SD against plain sampling with more steps."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("tv", "fd")):
        for smp, (marker, size) in zip(samplers, (("o", 9), ("s", 5), ("^", 7), ("v", 7))):
            # distinct markers: W2SD + DPM++ 2M lies exactly on W2SD + Euler (see table b's note)
            for method, style in ((PLAIN_LABEL, "--"), ("W2SD", "-")):
                rows = [r for r in exp.rows if r.info["sampler"] == smp and r.info["method"] == method]
                calls = [values(r, results, "calls")[0] for r in rows]
                _errorbar(ax, rows, results, calls, metric, linestyle=style, label=f"{smp} {method}",
                          marker=marker, markersize=size)
        ax.set_xlabel("denoiser calls per sample")
        ax.set_ylabel({"tv": "class-balance TV (lower is better)",
                       "fd": "Fréchet distance (lower is better)"}[metric])
        ax.legend(fontsize=8)
    _save(plt, fig, path)


def difference(exp: Experiment, results, samplers, path: Path) -> None:
    """(c) gain over the strong model vs the data difference and vs the gap diagnostics."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for smp, marker in zip(samplers, "os^"):
        base = next(r for r in exp.rows if r.info.get("sampler") == smp and r.info["weak_model"] is None)
        base_tv = mean_std(values(base, results, "tv"))[0]
        rows = [r for r in exp.rows if r.info.get("sampler") == smp and r.info["weak_model"]]
        gains = [base_tv - mean_std(values(r, results, "tv"))[0] for r in rows]
        spreads = [np.nan_to_num(mean_std(values(r, results, "tv"))[1]) for r in rows]
        xs = {"skew_diff": [r.info["skew_diff"] for r in rows],
              "gap": [mean_std(values(r, results, "gap"))[0] for r in rows],
              "gap_hi": [mean_std(values(r, results, "gap_hi"))[0] for r in rows]}
        for ax, x in zip(axes, xs.values()):
            ax.errorbar(x, gains, yerr=spreads, marker=marker, linestyle="none", capsize=3, label=smp)
            if smp == samplers[0]:
                for k, (xi, gi, r) in enumerate(zip(x, gains, rows)):
                    ax.annotate(r.label.split(": ", 1)[1], (xi, gi), fontsize=7,  # alternate
                                xytext=(4, 10 if k % 2 else -10), textcoords="offset points")
    titles = {"skew_diff": "weak skew - strong skew (training data difference)",
              "gap": "gap (engine report: mean over reflected steps)",
              "gap_hi": "gap over high-noise steps only"}
    for ax, title in zip(axes, titles.values()):
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xlabel(title)
        ax.set_ylabel("TV gain over strong alone (higher is better)")
        ax.legend(fontsize=8)
    _save(plt, fig, path)


def knobs(exp: Experiment, results, samplers, path: Path) -> None:
    """(d) closeness vs reflect steps and vs strength."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, knob in enumerate(("reflect_steps", "strength")):
        for smp in samplers:
            rows = [r for r in exp.rows if r.info["sampler"] == smp and r.info["knob"] == knob]
            x = [r.info["value"] for r in rows]
            for row_i, metric in enumerate(("tv", "fd")):
                _errorbar(axes[row_i, col], rows, results, x, metric, label=smp)
        for row_i, metric in enumerate(("tv", "fd")):
            ax = axes[row_i, col]
            ax.set_xlabel({"reflect_steps": "reflected steps (the first k)", "strength": "strength"}[knob])
            ax.set_ylabel({"tv": "class-balance TV ↓", "fd": "Fréchet distance ↓"}[metric])
            ax.legend(fontsize=8)
    _save(plt, fig, path)


VERSUS_STYLE = dict(zip(METHODS, (("tab:gray", "o"), ("tab:orange", "s"), ("tab:purple", "^"),
                                   ("tab:green", "v"))))


def versus(exps: List[Experiment], results, out: Path) -> Path:
    """(e)-(g) each metric against denoiser calls: every point of each method's sweep (small, faint)
    and the chosen point per budget (line, mean ± std over the reported seeds); dotted: the ideal model."""
    plt = _plt()
    path = out / "e_versus_autoguidance.png"
    fig, axes = plt.subplots(4, len(exps), figsize=(4.6 * len(exps), 12), squeeze=False)
    for col, exp in enumerate(exps):
        picks = chosen(exp, results)
        ideal = next(r for r in exp.rows if r.info.get("method") == "ideal")
        for row_i, (metric, name) in enumerate(METRICS):
            ax = axes[row_i, col]
            lines = list(dict.fromkeys((s, m) for s, _, m in picks))  # (sampler, method)
            for smp, method in lines:
                color, marker = VERSUS_STYLE[method]
                shift = 0.6 * (list(VERSUS_STYLE).index(method) - 1.5)  # side by side, not on top
                sweep = [r for r in exp.rows if r.info.get("pair") == "main"
                         and (r.info["sampler"], r.info["method"]) == (smp, method)]
                ax.scatter([r.info["budget"] + shift for r in sweep],
                           [mean_std(values(r, results, metric))[0] for r in sweep],
                           color=color, marker=marker, s=12, alpha=0.3)
                best = [r for (s, _, m), r in picks.items() if (s, m) == (smp, method)]
                label = method if smp == lines[0][0] else f"{smp} {method}"
                _errorbar(ax, best, results, [r.info["budget"] + shift for r in best], metric,
                          color=color, marker=marker, label=label)
            ax.axhline(mean_std(values(ideal, results, metric))[0], color="black", ls=":", lw=1,
                       label="ideal model")
            ax.set_xlabel("denoiser calls per sample")
            ax.set_ylabel(name)
            if row_i == 0:
                ax.set_title(exp.title.split(": ", 1)[1], fontsize=10)
                ax.legend(fontsize=7)
    _save(plt, fig, path)
    return path


def write_all(experiments: Dict[str, Experiment], results, cfg, out: Path) -> List[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"a": out / "a_samples_and_classes.png", "b": out / "b_equal_calls.png",
             "c": out / "c_difference.png", "d": out / "d_knobs.png"}
    samples_and_classes(experiments["a"], results, paths["a"])
    equal_calls(experiments["b"], results, cfg.samplers, paths["b"])
    difference(experiments["c"], results, cfg.sweep_samplers, paths["c"])
    knobs(experiments["d"], results, cfg.sweep_samplers, paths["d"])
    return list(paths.values())
