"""The command line: train (or load) the models, run (or load) the experiments, print, plot."""

import argparse
import os
import time
from pathlib import Path

from .cache import ENV_VAR, Cache, default_dir


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lib_w2sd.bench",
        description="W2SD on small diffusion models trained on 8x8 digits: strong vs weak vs W2SD, "
                    "equal denoiser calls, gain vs weak-to-strong difference, reflect steps and strength; "
                    "W2SD vs autoguidance at equal calls on the digits and the analytic mixtures.")
    p.add_argument("--quick", action="store_true",
                   help="tiny models and sample counts: a smoke test in well under a minute, "
                        "not evidence")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help=f"where models and results are cached (default: ${ENV_VAR} or {default_dir()})")
    p.add_argument("--out", type=Path, default=None,
                   help="where the figures and tables.md go (default: <cache dir>/figures)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes for training and sampling, one thread each (default: %(default)s)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from . import experiments, figures, tables, versus

    experiments.quiet_known_warnings()

    torch.set_num_threads(1)  # one thread per process: threads fight badly on a busy machine
    cfg = experiments.QUICK if args.quick else experiments.FULL
    root = (args.cache_dir or default_dir()) / ("quick" if args.quick else "full")
    out = args.out or root / "figures"
    started = time.time()
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    runner = experiments.Runner(cfg, Cache(root), log=log)
    log(f"cache: {root}")
    experiments.train_all(runner, args.jobs)
    log(f"classifier accuracy on the held-out real half: {runner.classifier_accuracy():.3f}")
    exps = {e.key: e for e in experiments.all_experiments(cfg)}
    versus_exps = versus.experiments(cfg)
    results = experiments.run_all(runner, list(exps.values()) + versus_exps, args.jobs)

    text = [experiments.describe(cfg)]
    text += [tables.experiment_table(e, results) for e in list(exps.values()) + versus_exps]
    text.append(versus.side_by_side(versus_exps, results))
    text.append("W2SD vs autoguidance, paired by seed\n\n" + "\n".join(versus.verdicts(versus_exps, results)))
    checks = tables.checks(exps, results, cfg.samplers, cfg.sweep_samplers) + versus.checks(versus_exps, results)
    text.append("Checks\n\n" + "\n".join(checks))
    report = "\n\n".join(text)
    print("\n" + report)
    paths = figures.write_all(exps, results, cfg, out) + [figures.versus(versus_exps, results, out)]
    (out / "tables.md").write_text(report + "\n")
    log(f"\nfigures and tables.md in {out}: {', '.join(p.name for p in paths)}")
    log(f"done in {time.time() - started:.0f}s")
    return 0
