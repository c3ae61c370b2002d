"""Stand-in for modules/rng.py (A1111 v1.10.1, 82a973c0): ImageRNG, one generator per seed;
first() and each next() draw one noise tensor per image of the batch."""

import torch


class ImageRNG:
    def __init__(self, shape, seeds, subseeds=None, subseed_strength=0.0, seed_resize_from_h=0, seed_resize_from_w=0):
        self.shape = tuple(shape)
        self.seeds = seeds
        self.generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]

    def next(self):
        return torch.stack([torch.randn(self.shape, generator=g) for g in self.generators])

    first = next
