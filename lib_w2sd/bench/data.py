"""The real data: scikit-learn's 8x8 digits (shipped with the package, no download).

Images are scaled from 0..16 to [-1, 1] and flattened to 64 values. A fixed stratified split
keeps a held-out half as the reference set every metric compares against; models and the
classifier only ever see the training half.

Class imbalance is made by *reweighting*, not by dropping images: a model trained on the class
mix `w` sees batches drawn with probability proportional to w[class] / count[class], so it
targets the mixture sum_c w_c p(x | c) while seeing the same images as every other model.
"""

from dataclasses import dataclass

import numpy as np
import torch

N_CLASSES = 10


@dataclass(frozen=True)
class Digits:
    """Train / reference split of the scaled digits, as float32 tensors of shape [n, 64]."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    ref_x: torch.Tensor
    ref_y: torch.Tensor

    @property
    def sigma_data(self) -> float:
        """Standard deviation of the training pixels: EDM's c_skip/c_out/c_in use it."""
        return round(float(self.train_x.std()), 2)


def load_digits_split(ref_fraction: float = 0.5, seed: int = 0) -> Digits:
    """Load the digits and split them, stratified by class, into train and reference halves."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data.astype(np.float32) / 8.0) - 1.0
    y = bunch.target.astype(np.int64)
    x_tr, x_ref, y_tr, y_ref = train_test_split(
        x, y, test_size=ref_fraction, stratify=y, random_state=seed)
    t = torch.from_numpy
    return Digits(t(x_tr), t(y_tr), t(x_ref), t(y_ref))


def class_mix(skew: float, n_classes: int = N_CLASSES) -> np.ndarray:
    """Class weights proportional to exp(-skew * c / (n_classes - 1)).

    skew 0 is the balanced (real) mix; the most/least common class ratio is exp(skew);
    a negative skew favours the high digits instead.
    """
    w = np.exp(-skew * np.arange(n_classes) / (n_classes - 1))
    return w / w.sum()


def item_weights(y: torch.Tensor, mix: np.ndarray) -> torch.Tensor:
    """Per-image sampling weights that make class c appear with probability mix[c]."""
    counts = torch.bincount(y, minlength=len(mix)).double()
    return torch.as_tensor(mix, dtype=torch.float64)[y] / counts[y]


def weighted_batches(x: torch.Tensor, y: torch.Tensor, mix: np.ndarray, batch: int,
                     generator: torch.Generator):
    """Endless batches drawn with replacement so that the class mix is `mix`."""
    w = item_weights(y, mix)
    while True:
        yield x[torch.multinomial(w, batch, replacement=True, generator=generator)]


def to_images(x: torch.Tensor) -> np.ndarray:
    """[-1, 1] flat samples to [0, 1] 8x8 images for plotting."""
    return ((x.clamp(-1, 1) + 1) / 2).reshape(-1, 8, 8).cpu().numpy()
