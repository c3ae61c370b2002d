"""Plain-text tables of the experiments, and the checks the issue asks the bench to show.

Each cell is mean +- standard deviation over the seeds (no +- for a single seed).
"""

from typing import Dict, List, Optional

import numpy as np

from .experiments import PLAIN_LABEL, Experiment, Row, RunSpec

METRICS = (("tv", "TV class balance ↓"), ("fd", "FD features ↓"),
           ("precision", "precision ↑"), ("recall", "recall ↑"))


def values(row: Row, results: Dict[RunSpec, dict], metric: str) -> np.ndarray:
    """The metric over the row's seeds (NaN where a run has none, e.g. no gap)."""
    vals = [results[s].get(metric) for s in row.specs]
    return np.array([np.nan if v is None else v for v in vals], dtype=float)


def mean_std(vals: np.ndarray) -> tuple:
    vals = vals[~np.isnan(vals)]
    if not len(vals):
        return np.nan, np.nan
    return float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else np.nan


def cell(vals: np.ndarray, digits: int = 3) -> str:
    """mean ± std, or the bare mean for a single seed or a value that never varies."""
    mean, std = mean_std(vals)
    if np.isnan(mean):
        return "-"
    if np.isnan(std) or std == 0:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _digits(metric: str) -> int:
    return 2 if metric == "fd" else 3


def render(columns: List[str], body: List[List[str]]) -> str:
    """A GitHub-flavoured markdown table (readable as plain text too)."""
    widths = [max(len(r[i]) for r in [columns] + body) for i in range(len(columns))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), rule] + [line(r) for r in body])


def experiment_table(exp: Experiment, results: Dict[RunSpec, dict]) -> str:
    """The experiment's rows with calls, the four closeness metrics and, where any, the gaps."""
    show_gap = any(results[s].get("gap") is not None for r in exp.rows for s in r.specs)
    show_diff = any("skew_diff" in r.info for r in exp.rows)
    columns = ["run", "calls"] + (["skew diff"] if show_diff else [])
    columns += [name for _, name in METRICS] + (["gap", "gap hi"] if show_gap else [])
    body = []
    for row in exp.rows:
        cells = [row.label, cell(values(row, results, "calls"), 0)]
        if show_diff:
            diff = row.info.get("skew_diff")
            cells.append("-" if diff is None else f"{diff:+g}")
        cells += [cell(values(row, results, m), _digits(m)) for m, _ in METRICS]
        if show_gap:
            cells += [cell(values(row, results, "gap"), 4), cell(values(row, results, "gap_hi"), 4)]
        body.append(cells)
    text = f"({exp.key}) {exp.title}\n\n" + render(columns, body)
    return text + (f"\n\n{exp.note}" if exp.note else "")


# ----------------------------------------------------------------------------- the checks


def paired_gain(better: Row, base: Row, results, metric: str) -> tuple:
    """Mean and std over seeds of (base - better) for a lower-is-better metric, paired by seed."""
    diff = values(base, results, metric) - values(better, results, metric)
    return mean_std(diff)


def _find(exp: Experiment, label: str) -> Optional[Row]:
    return next((r for r in exp.rows if r.label == label), None)


def _gain_text(gain: tuple) -> str:
    mean, std = gain
    spread = "" if np.isnan(std) else f" ± {std:.3f}"
    return f"{mean:+.3f}{spread}"


def checks(experiments: Dict[str, Experiment], results: Dict[RunSpec, dict], samplers,
           sweep_samplers) -> List[str]:
    """The claims of the issue, each stated with its numbers and a PASS / FAIL verdict.

    A gain counts when its mean exceeds the seed-to-seed spread of the paired difference
    (or is positive, with a single seed)."""
    lines = []

    def verdict(gain: tuple) -> str:
        mean, std = gain
        return "PASS" if mean > (0 if np.isnan(std) else std) else "FAIL"

    a, b, c = experiments["a"], experiments["b"], experiments["c"]
    for smp in samplers:
        strong, w2sd = _find(a, f"{smp}: strong"), _find(a, f"{smp}: W2SD")
        for metric in ("tv", "fd"):
            g = paired_gain(w2sd, strong, results, metric)
            lines.append(f"{verdict(g)}  {smp}: W2SD closer than strong at equal steps, "
                         f"{metric} lower by {_gain_text(g)}")
        for w2sd_row in [r for r in b.rows if r.info.get("method") == "W2SD" and r.info["sampler"] == smp]:
            calls = values(w2sd_row, results, "calls")[0]
            plain = [r for r in b.rows if r.info.get("method") == PLAIN_LABEL and r.info["sampler"] == smp
                     and values(r, results, "calls")[0] == calls]
            if not plain:
                continue
            for metric in ("tv", "fd"):
                g = paired_gain(w2sd_row, plain[0], results, metric)
                lines.append(f"{verdict(g)}  {smp}: W2SD beats plain at {calls:.0f} calls "
                             f"({w2sd_row.label} vs {plain[0].label}), {metric} lower by {_gain_text(g)}")
    for smp in sweep_samplers:
        rows = [r for r in c.rows if r.info.get("sampler") == smp and r.info.get("weak_model")]
        identical = next(r for r in rows if r.info["weak_model"] == "strong")
        gap0 = mean_std(values(identical, results, "gap"))[0]
        lines.append(f"{'PASS' if gap0 < 1e-6 else 'FAIL'}  {smp}: gap of identical models = {gap0:.2e}")
        tuned = sorted((r for r in rows if r.label.startswith(f"{smp}: tuned")),
                       key=lambda r: r.info["skew_diff"])
        for metric in ("gap", "gap_hi"):
            gaps = [mean_std(values(r, results, metric))[0] for r in tuned]
            grows = all(x < y for x, y in zip(gaps, gaps[1:]))
            lines.append(f"{'PASS' if grows else 'FAIL'}  {smp}: {metric} grows with the difference "
                         f"over the tuned weak models: " + ", ".join(f"{g:.4f}" for g in gaps))
    return lines
