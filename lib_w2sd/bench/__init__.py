"""Trained-model benchmark of W2SD: the paper's dataset-difference experiment on 8x8 digits.

`python -m lib_w2sd.bench` trains small EDM denoisers on scikit-learn's digits with different
class balances, samples them with the real k-diffusion samplers through lib_w2sd.wrap_sampler,
and measures how close the samples are to the real data (class balance, Fréchet distance on
classifier features, precision/recall). It also sets W2SD against autoguidance (its nearest peer,
which uses the same weak model) at equal denoiser calls, on the digits and on the analytic
mixtures (lib_w2sd.bench.versus). CPU only, no downloads, everything cached.
See `python -m lib_w2sd.bench --help` and README's "Benchmark" section.
"""

from .cli import main

__all__ = ["main"]
