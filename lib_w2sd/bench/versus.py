"""(e)-(g) W2SD against autoguidance at equal denoiser calls, on the digits and the analytic mixtures.

Both methods use the same weak model; what a user pays for either is denoiser calls, so every
method gets the same budgets of calls per sample and spends them its own way:

    plain            n steps                                        n calls
    autoguidance     n steps, D_w + w (D_s - D_w) at each           2n
    W2SD             n steps, the first k reflected                 n + 2k
    W2SD + autog.    n steps autoguided, the first k reflected      2n + 3k

(Euler and DPM++ 2M: one evaluation per step). W2SD is swept over how many steps it reflects
(the most the budget allows, about half that) and the strength; autoguidance over its weight.

W2SD on top of autoguidance: the sampled model is the autoguided D_g and, as wrap_sampler does by
default, the reflection's strong model is that same D_g, with D_w as its weak model. The pair is
ordered (D_g is extrapolated away from D_w), so the reflection is W2SD's own premise applied to
D_g, and weak == strong still leaves plain sampling exactly. But its push, D_g - D_w =
w (D_s - D_w), points the same way as the guidance: the combination brings no new information,
it only spends the calls on the same direction differently (a reflected step costs two calls of
D_g and one of D_w). It is measured, not assumed, to help.

Each method's setting at each budget is chosen on a separate tuning seed by the class-balance TV
and reported on the other seeds, so no method wins by being picked on the noise it is shown on.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import analytic
from .experiments import PLAIN_LABEL, BenchConfig, Experiment, Row, RunSpec, _per_seed, sampler_calls, tuned_name
from .tables import METRICS, _digits, _gain_text, cell, mean_std, render, values

AG, W2SD, COMBO = "autoguidance", "W2SD", "W2SD + autoguidance"
METHODS = (PLAIN_LABEL, AG, W2SD, COMBO)
SELECT_BY = "tv"
REFERENCE = "plain reference"  # the pair rows' plain runs: same model, same steps


@dataclass(frozen=True)
class Bed:
    """One strong/weak pair to compare the methods on, with its references."""

    key: str
    title: str
    strong: str
    weak: str
    ideal: str
    swapped: Tuple[str, str]  # (sampled model, "weak" model): the "weak" is the better one
    measures: str = ""  # how the metric columns read on this bed, if not as on the digits


def beds(cfg: BenchConfig) -> List[Bed]:
    """The trained digits (weak: the main fine-tune; swapped: the fine-tune on the real balance) and
    the two mixtures (swapped: the roles exchanged, as the demo's S2WD)."""
    digits = Bed("e", "digits, trained models", "strong", cfg.main_weak, "ideal",
                 ("strong", tuned_name(cfg.swapped_skew)))
    mixtures = [Bed(key, f"{bed} mixture, exact denoisers", *(analytic.name(bed, r) for r in
                                                               ("strong", "weak", "ideal")),
                    (analytic.name(bed, "weak"), analytic.name(bed, "strong")),
                    " TV: the modes' shares against the ideal weights; FD, precision/recall: the "
                    "samples' coordinates against a sample of the ideal mixture.")
                for key, bed in (("f", "1-D"), ("g", "2-D"))]
    return [digits] + mixtures


def run_calls(sampler: str, steps: int, reflected: int, guided: bool) -> int:
    """Denoiser calls of one run: each evaluation of an autoguided model is two calls, and a
    reflection adds an evaluation of the sampled model (its strong) and one weak call."""
    per_evaluation = 2 if guided else 1
    return per_evaluation * (sampler_calls(sampler, steps) + reflected) + reflected


def plan(sampler: str, budget: int, guided: bool, reflections: str) -> Optional[Tuple[int, int]]:
    """(steps, reflected steps) spending exactly `budget` calls, or None if none does.

    reflections: 'none'; 'most' (as many reflected steps as the budget allows, each step but the
    last at most); 'half' (about half that many, the rest of the budget in more steps)."""
    options = [(n, k) for n in range(1, budget + 1) for k in range(n)
               if run_calls(sampler, n, k, guided) == budget and (k > 0) == (reflections != "none")]
    if not options:
        return None
    most = max(k for _, k in options)
    target = {"none": 0, "most": most, "half": most / 2}[reflections]
    return min(options, key=lambda o: (abs(o[1] - target), o[1]))


def _row(cfg, label, info, tuned: bool, **run) -> Row:
    tuning = (RunSpec(seed=cfg.tuning_seed, **run),) if tuned else ()
    return Row(label, _per_seed(cfg, **run), info, tuning)


def _budget_rows(cfg: BenchConfig, bed: Bed, smp: str, budget: int) -> List[Row]:
    """Every method's points at one budget."""
    rows = []
    head = f"{smp}, {budget} calls:"

    def add(method, setting, **run):
        info = {"sampler": smp, "budget": budget, "method": method, "pair": "main", "setting": setting}
        rows.append(_row(cfg, f"{head} {method} {setting}", info, True, sampler=smp, **run))

    n, _ = plan(smp, budget, False, "none")
    add(PLAIN_LABEL, f"({n} steps)", model=bed.strong, steps=n)
    n_ag = plan(smp, budget, True, "none")
    if n_ag:
        for w in cfg.guidance_weights:
            add(AG, f"w={w:g} ({n_ag[0]} steps)", model=bed.strong, guide=bed.weak, guidance=w,
                steps=n_ag[0])
    for reflections, strength, weak_sigma in cfg.w2sd_points:
        p = plan(smp, budget, False, reflections)
        if p:
            where = "" if weak_sigma == "start" else f" {weak_sigma}"
            add(W2SD, f"s={strength:g}{where} ({p[1]} of {p[0]} steps reflected)", model=bed.strong,
                weak=bed.weak, steps=p[0], reflect_steps=p[1], strength=strength, weak_sigma=weak_sigma)
    p = plan(smp, budget, True, "most")
    if p:
        for w, strength in cfg.combo_points:
            add(COMBO, f"w={w:g} s={strength:g} ({p[1]} of {p[0]} steps reflected)", model=bed.strong,
                guide=bed.weak, guidance=w, weak=bed.weak, steps=p[0], reflect_steps=p[1],
                strength=strength)
    return rows


def _pair_rows(cfg: BenchConfig, bed: Bed, smp: str, budget: int) -> List[Row]:
    """Identical and swapped pairs at one budget, with the plain runs they must equal or lose to."""
    w, (n_ag, _), (n, k) = cfg.pair_guidance, plan(smp, budget, True, "none"), plan(smp, budget, False, "most")
    rows = []

    def add(pair, method, label, **run):
        info = {"sampler": smp, "budget": budget, "method": method, "pair": pair}
        rows.append(_row(cfg, label, info, False, sampler=smp, **run))

    for model in dict.fromkeys((bed.strong, bed.swapped[0])):
        for steps in dict.fromkeys((n_ag, n)):
            add(REFERENCE, PLAIN_LABEL, f"{smp}: plain {model} ({steps} steps)", model=model, steps=steps)
    for pair, (model, weak) in (("identical", (bed.strong, bed.strong)), ("swapped", bed.swapped)):
        head = f"{smp}, {budget} calls: {pair} pair ({model} / {weak}),"
        add(pair, AG, f"{head} autoguidance w={w:g} ({n_ag} steps)", model=model, guide=weak,
            guidance=w, steps=n_ag)
        add(pair, W2SD, f"{head} W2SD s=1 ({k} of {n} steps reflected)", model=model, weak=weak,
            steps=n, reflect_steps=k)
    return rows


def comparison(cfg: BenchConfig, bed: Bed) -> Experiment:
    rows = []
    for smp in cfg.versus_samplers:
        for budget in cfg.versus_budgets:
            rows += _budget_rows(cfg, bed, smp, budget)
        rows += _pair_rows(cfg, bed, smp, cfg.versus_budgets[len(cfg.versus_budgets) // 2])
    top = max(cfg.versus_budgets)
    rows.append(Row(f"ideal model, plain ({top} steps)",
                    _per_seed(cfg, model=bed.ideal, sampler=cfg.versus_samplers[0], steps=top),
                    {"method": "ideal", "pair": "ideal"}))
    return Experiment(bed.key, f"W2SD vs autoguidance at equal denoiser calls: {bed.title}", rows,
                      f"strong = {bed.strong}, weak = {bed.weak}; calls: plain n, autoguidance 2n, "
                      "W2SD n + 2k (k reflected), W2SD + autoguidance 2n + 3k. s: W2SD strength, "
                      "w: guidance weight. Pairs: weak == strong must give plain sampling exactly; "
                      f"swapped: {bed.swapped[1]} is the 'weak' model of {bed.swapped[0]}." + bed.measures)


def experiments(cfg: BenchConfig) -> List[Experiment]:
    return [comparison(cfg, bed) for bed in beds(cfg)]


# ----------------------------------------------------------------------------- reading the results


def best(rows: List[Row], results: Dict[RunSpec, dict]) -> Row:
    """The row whose tuning run scores best on SELECT_BY (lower is better)."""
    return min(rows, key=lambda r: results[r.tuning[0]][SELECT_BY])


def chosen(exp: Experiment, results) -> Dict[Tuple[str, int, str], Row]:
    """(sampler, budget, method) -> the method's chosen point at that budget."""
    groups: Dict[Tuple[str, int, str], List[Row]] = {}
    for row in exp.rows:
        if row.info.get("pair") == "main":
            groups.setdefault((row.info["sampler"], row.info["budget"], row.info["method"]), []).append(row)
    return {key: best(rows, results) for key, rows in groups.items()}


def side_by_side(exps: List[Experiment], results) -> str:
    """One table: at each budget, each method at its chosen setting."""
    columns = ["bed", "calls", "method (chosen setting)"] + [name for _, name in METRICS]
    body = []
    scores = lambda row: [cell(values(row, results, m), _digits(m)) for m, _ in METRICS]  # noqa: E731
    for exp in exps:
        for (smp, budget, method), row in chosen(exp, results).items():
            body.append([f"({exp.key}) {smp}", str(budget), f"{method} {row.info['setting']}"] + scores(row))
        ideal = next(r for r in exp.rows if r.info.get("method") == "ideal")
        body.append([f"({exp.key})", "-", ideal.label] + scores(ideal))
    return ("W2SD vs autoguidance side by side (settings chosen on the tuning seed by "
            f"{SELECT_BY.upper()}, reported on the other seeds)\n\n" + render(columns, body))


def _paired(a: Row, b: Row, results, metric: str) -> Tuple[float, float]:
    """Mean and std over seeds of a - b, paired by seed."""
    return mean_std(values(a, results, metric) - values(b, results, metric))


def verdicts(exps: List[Experiment], results) -> List[str]:
    """Per bed and budget, W2SD's chosen point against autoguidance's, paired by seed."""
    lines = []
    for exp in exps:
        picks = chosen(exp, results)
        for (smp, budget, method), w2sd in picks.items():
            ag = picks.get((smp, budget, AG))
            if method != W2SD or ag is None:
                continue
            parts = []
            for metric in ("tv", "fd"):
                gain = _paired(w2sd, ag, results, metric)
                spread = 0 if np.isnan(gain[1]) else gain[1]
                who = ("W2SD" if gain[0] < -spread else "autoguidance" if gain[0] > spread
                       else "neither (within the seeds' spread)")
                parts.append(f"{metric} W2SD - autoguidance {_gain_text(gain)}: {who} better")
            lines.append(f"({exp.key}) {smp}, {budget} calls: " + "; ".join(parts))
    return lines


def _same_scores(a: Row, b: Row, results) -> bool:
    return all(values(a, results, m).tolist() == values(b, results, m).tolist() for m, _ in METRICS)


def checks(exps: List[Experiment], results) -> List[str]:
    """Every point spends its budget exactly; identical pairs give plain sampling exactly (the
    same scores on every seed); swapped pairs do worse than plain sampling at the same steps."""
    lines = []
    for exp in exps:
        main = [r for r in exp.rows if r.info.get("pair") == "main"]
        off = [(r.label, c) for r in main for c in values(r, results, "calls") if c != r.info["budget"]]
        lines.append(f"{'FAIL' if off else 'PASS'}  ({exp.key}) every point spends exactly its budget "
                     f"of calls" + (f": not {off[0][0]} ({off[0][1]:.0f})" if off else ""))
        for row in (r for r in exp.rows if r.info.get("pair") in ("identical", "swapped")):
            spec = row.specs[0]
            plain = next(r for r in exp.rows if r.info.get("pair") == REFERENCE and r.info["sampler"]
                         == spec.sampler and r.specs[0].model == spec.model and r.specs[0].steps == spec.steps)
            label = f"({exp.key}) {row.label}"
            if row.info["pair"] == "identical":
                ok = _same_scores(row, plain, results)
                lines.append(f"{'PASS' if ok else 'FAIL'}  {label}: the same samples as plain")
            else:
                mean, std = _paired(row, plain, results, "tv")
                ok = mean > (0 if np.isnan(std) else std)
                lines.append(f"{'PASS' if ok else 'FAIL'}  {label}: TV worse than plain at the same "
                             f"steps by {_gain_text((mean, std))}")
    return lines
