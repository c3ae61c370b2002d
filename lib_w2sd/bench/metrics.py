"""How close a set of samples is to the real data.

All measures work on numpy arrays and are independent of the models:
- class balance: total-variation distance between predicted class histograms;
- Fréchet distance between Gaussians fitted to classifier features (FID's formula);
- precision / recall of Kynkäänniemi et al. 2019 (k-NN manifolds in feature space).
"""

from dataclasses import asdict, dataclass

import numpy as np


def class_histogram(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Fraction of samples in each class."""
    return np.bincount(np.asarray(labels), minlength=n_classes) / max(len(labels), 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """TV distance 0.5 * sum |p - q|: 0 for equal histograms, 1 for disjoint ones."""
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) for rows of a and b.

    The symmetric form keeps every matrix PSD, so no complex square roots are needed.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = (np.atleast_2d(np.cov(v, rowvar=False)) for v in (a, b))  # 1-D data: a 1x1 matrix
    root_a = _sqrt_psd(s_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ s_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * cross)


def _pairwise_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def _knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row."""
    d = _pairwise_dist(x, x)
    return np.partition(d, k, axis=1)[:, k]  # column 0 is the row itself (distance 0)


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """Fraction of points inside at least one ball (centre, radius)."""
    return float((_pairwise_dist(points, centres) <= radii[None]).any(1).mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple:
    """Kynkäänniemi et al. improved precision and recall with k-NN balls.

    precision: share of fake samples on the real manifold (fidelity);
    recall: share of real samples on the fake manifold (coverage / diversity).
    Use equal set sizes: both numbers depend on them.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    precision = _coverage(fake, real, _knn_radii(real, k))
    recall = _coverage(real, fake, _knn_radii(fake, k))
    return precision, recall


@dataclass(frozen=True)
class Scores:
    """Closeness of one sample set to the real reference set (lower tv/fd, higher p/r is better)."""

    tv: float
    fd: float
    precision: float
    recall: float
    hist: tuple

    def to_dict(self) -> dict:
        return asdict(self)


class Judge:
    """Scores sample sets against a fixed real reference set through a trained classifier."""

    def __init__(self, classifier, ref_x, n_classes: int, k: int = 3):
        self.classifier = classifier
        self.n_classes = n_classes
        self.k = k
        self.ref_feats, ref_labels = self._embed(ref_x)
        self.ref_hist = class_histogram(ref_labels, n_classes)

    def _embed(self, x):
        import torch

        with torch.no_grad():
            x = torch.as_tensor(x, dtype=torch.float32)
            feats = self.classifier.features(x)
            labels = self.classifier.head(feats).argmax(1)
        return feats.numpy(), labels.numpy()

    def score(self, samples) -> Scores:
        feats, labels = self._embed(samples)
        hist = class_histogram(labels, self.n_classes)
        n = min(len(feats), len(self.ref_feats))
        precision, recall = precision_recall(self.ref_feats[:n], feats[:n], self.k)
        return Scores(tv=total_variation(hist, self.ref_hist),
                      fd=frechet_distance(feats, self.ref_feats),
                      precision=precision, recall=recall,
                      hist=tuple(float(h) for h in hist))
