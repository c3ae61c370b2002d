"""One UNet batch for a reflection's strong and weak calls (WebUI-free; the adapters route their
model's apply_model through it).

When the weak model is the strong one with another CFG scale or prompt, both calls of a
reflection read the same latent at the same noise level: every UNet row the weak call needs is
a row the strong call can compute in its own batch (the same cond and uncond rows for a CFG
difference; one more cond row for a weak prompt). The strong call runs with the weak rows added
to its batch and records each output row under its inputs (RowCache); the weak call then goes
through the WebUI's own CFG denoiser as usual, and each of its UNet batches is answered from the
recorded rows. So everything the denoiser does around the UNet (prompt-editing schedules,
AND-composition, CFG combination, masks, image conds, callbacks) still runs for both calls; only
the UNet evaluation is shared. A batch with a row the cache has not seen runs the real model:
the replay is never wrong, at worst not cheaper.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch

RowKey = Tuple[object, ...]  # the inputs of one batch row: tensors (that row's slice) and plain values


class RowCache:
    """Output rows of the UNet calls of one joint call, keyed by the inputs of each row."""

    def __init__(self):
        self._rows: List[Tuple[RowKey, torch.Tensor]] = []
        self.served = 0  # batches answered from the cache

    def record(self, keys: Sequence[RowKey], output: torch.Tensor) -> None:
        self._rows.extend(zip(keys, output))

    def lookup(self, keys: Sequence[RowKey]) -> Optional[torch.Tensor]:
        """The output batch for these rows if every one was recorded, else None."""
        rows = []
        for key in keys:
            row = next((out for known, out in self._rows if _same(known, key)), None)
            if row is None:
                return None
            rows.append(row)
        self.served += 1
        return torch.stack(rows)


def _same(a: RowKey, b: RowKey) -> bool:
    return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))


def _equal(x, y) -> bool:
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        return (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dtype == y.dtype
                and x.shape == y.shape and x.device == y.device and bool(torch.equal(x, y)))
    return x == y


def row_keys(batch: int, tensors: Sequence[torch.Tensor], flags: Sequence[object] = ()) -> List[RowKey]:
    """Per-row keys of a batch of `batch` rows: each tensor's slice for that row, plus that row's
    entry of `flags` (e.g. Forge's cond/uncond mark). A tensor that broadcasts (0-d, or one row)
    enters whole; one with another number of rows is left out: no model can read it row by row
    (A1111's image cond keeps its uncond rows when the uncond batch is skipped; models that
    concatenate it then fail on the batch size, the others ignore it)."""
    shared = [t for t in tensors if t.dim() == 0 or (t.shape[0] == 1 and batch > 1)]
    per_row = [t for t in tensors if t.dim() > 0 and t.shape[0] == batch]
    return [tuple(t[i] for t in per_row) + tuple(shared) + ((flags[i],) if flags else ()) for i in range(batch)]


@contextlib.contextmanager
def routed(owner, name: str, cache: RowCache, record: bool,
           keys_of: Callable[..., List[RowKey]]) -> Iterator[None]:
    """For the enclosed calls, `owner.<name>` (a model's apply_model) goes through `cache`: with
    `record` its output rows are stored under `keys_of(*args, **kwargs)`; else a batch whose rows
    were all recorded is answered from the cache without running the model. Afterwards `owner` is
    exactly as before (the instance attribute removed, or the one it had put back)."""
    own = vars(owner)
    had, before = name in own, own.get(name)
    original = getattr(owner, name)

    def apply(*args, **kwargs):
        keys = keys_of(*args, **kwargs)
        if not record:
            found = cache.lookup(keys)
            if found is not None:
                return found
        output = original(*args, **kwargs)
        if record:
            cache.record(keys, output)
        return output

    setattr(owner, name, apply)
    try:
        yield
    finally:
        if had:
            setattr(owner, name, before)
        else:
            delattr(owner, name)
