"""The analytic test beds as bench models: lib_w2sd.mixtures' exact denoisers, scored like the digits.

A bed's models are named "<bed> <role>" ("1-D strong", "2-D weak", ...): the Runner samples them
like trained models, and a MixtureJudge scores the samples with the digits' four measures, read in
the bed's own coordinates: TV between the share of samples in each mode and the ideal weights
(the class balance's analogue), and FD and precision/recall against a fixed sample of the ideal.
"""

from typing import Optional, Tuple

import torch

from .. import mixtures
from .metrics import Scores, frechet_distance, precision_recall, total_variation

BEDS = {"1-D": mixtures.paper_1d, "2-D": mixtures.paper_2d}
ROLES = ("ideal", "strong", "weak")
REFERENCE_SEED = 12345  # the ideal's reference sample; the runs' seeds start their noise elsewhere


def name(bed: str, role: str) -> str:
    return f"{bed} {role}"


def parse(model: str) -> Optional[Tuple[str, str]]:
    """(bed, role) of a mixture model's name, None for any other model."""
    bed, _, role = model.partition(" ")
    return (bed, role) if bed in BEDS and role in ROLES else None


def is_mixture(model: str) -> bool:
    return parse(model) is not None


def mixture(model: str) -> mixtures.GaussianMixture:
    bed, role = parse(model)
    return dict(zip(ROLES, BEDS[bed]()))[role]


def key_parts(model: str) -> list:
    """What determines the model, for cache keys: a changed mixture never reads a stale result."""
    m = mixture(model)
    return ["mixture", model, m.means.tolist(), m.weights.tolist(), m.std]


class MixtureJudge:
    """Scores samples of one bed against its ideal mixture."""

    def __init__(self, bed: str, n_reference: int):
        self.ideal = mixture(name(bed, "ideal"))
        gen = torch.Generator().manual_seed(REFERENCE_SEED)
        self.reference = self.ideal.sample(n_reference, gen).numpy()

    def score(self, samples: torch.Tensor) -> Scores:
        masses = self.ideal.mode_masses(samples)
        x = samples.reshape(len(samples), -1).double().numpy()
        n = min(len(x), len(self.reference))
        precision, recall = precision_recall(self.reference[:n], x[:n])
        return Scores(tv=total_variation(masses.numpy(), self.ideal.weights.numpy()),
                      fd=frechet_distance(x, self.reference), precision=precision, recall=recall,
                      hist=tuple(float(m) for m in masses))
