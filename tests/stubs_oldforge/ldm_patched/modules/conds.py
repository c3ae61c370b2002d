"""Stand-in for ldm_patched/modules/conds.py (C:1f95d717 11-67, R:3b56b268 10-72): CONDRegular and
CONDCrossAttn (concat of equal token counts only; the real one repeats shorter ones to the lcm)."""

import torch


class CONDRegular:
    def __init__(self, cond):
        self.cond = cond

    def _copy_with(self, cond):
        return self.__class__(cond)

    def process_cond(self, batch_size, device, **kwargs):
        cond = self.cond if self.cond.shape[0] == batch_size else self.cond.repeat(batch_size // self.cond.shape[0],
                                                                                     *[1] * (self.cond.dim() - 1))
        return self._copy_with(cond.to(device))

    def can_concat(self, other):
        return self.cond.shape == other.cond.shape

    def concat(self, others):
        return torch.cat([self.cond] + [x.cond for x in others])


class CONDCrossAttn(CONDRegular):
    pass
