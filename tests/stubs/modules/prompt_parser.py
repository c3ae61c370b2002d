"""Stand-in for modules/prompt_parser.py (A1111 v1.10.1, 82a973c0).

Same data structures and signatures; the prompt grammar is cut down to what the tests use:
prompt editing `[a:b:n]` (one level, n an integer step or a fraction with a '.'), `AND` with
`:weight`. Conds are looked up by the CFG denoiser's call counter (`current_step <=
end_at_step`), which is why W2SD must not advance that counter with its extra calls.
"""

from __future__ import annotations

import re
from collections import namedtuple

import torch

ScheduledPromptConditioning = namedtuple("ScheduledPromptConditioning", ["end_at_step", "cond"])

re_scheduled = re.compile(r"\[([^\[\]:]*):([^\[\]:]*):\s*([0-9.]+)\s*\]")
re_AND = re.compile(r"\bAND\b")
re_weight = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


def get_learned_conditioning_prompt_schedules(prompts, base_steps, hires_steps=None, use_old_scheduling=False):
    """[[end_step, text], ...] per prompt; as the real one: in a hires pass (hires_steps given)
    integer steps count from the end of the first pass and fractions from 1.0."""
    if hires_steps is None or use_old_scheduling:
        int_offset, flt_offset, steps = 0, 0.0, base_steps
    else:
        int_offset, flt_offset, steps = base_steps, 1.0, hires_steps

    def when(text):
        v = float(text)
        v = (v - flt_offset) * steps if "." in text else v - int_offset
        return min(steps, int(v))

    def schedule(prompt):
        switches = sorted({when(m.group(3)) for m in re_scheduled.finditer(prompt)} | {steps})
        switches = [s for s in switches if s >= 1]

        def at(step):
            return re_scheduled.sub(lambda m: m.group(1) if step <= when(m.group(3)) else m.group(2), prompt)

        return [[s, at(s)] for s in switches]

    return [schedule(prompt) for prompt in prompts]


class SdConditioning(list):
    """A list of prompts for the conditioner, with the image size (SDXL needs it)."""

    def __init__(self, prompts, is_negative_prompt=False, width=None, height=None, copy_from=None):
        super().__init__()
        self.extend(prompts)
        if copy_from is None:
            copy_from = prompts
        self.is_negative_prompt = is_negative_prompt or getattr(copy_from, "is_negative_prompt", False)
        self.width = width or getattr(copy_from, "width", None)
        self.height = height or getattr(copy_from, "height", None)


def get_learned_conditioning(model, prompts, steps, hires_steps=None, use_old_scheduling=False):
    res = []
    cache = {}
    for prompt, prompt_schedule in zip(prompts, get_learned_conditioning_prompt_schedules(prompts, steps, hires_steps, use_old_scheduling)):
        if prompt not in cache:
            texts = SdConditioning([x[1] for x in prompt_schedule], copy_from=prompts)
            conds = model.get_learned_conditioning(texts)
            cache[prompt] = [
                ScheduledPromptConditioning(end, {k: v[i] for k, v in conds.items()} if isinstance(conds, dict) else conds[i])
                for i, (end, _) in enumerate(prompt_schedule)
            ]
        res.append(cache[prompt])
    return res


class ComposableScheduledPromptConditioning:
    def __init__(self, schedules, weight=1.0):
        self.schedules = schedules
        self.weight = weight


class MulticondLearnedConditioning:
    def __init__(self, shape, batch):
        self.shape = shape
        self.batch = batch


def get_multicond_prompt_list(prompts):
    res_indexes, flat, index_of = [], SdConditioning([], copy_from=prompts), {}
    for prompt in prompts:
        indexes = []
        for subprompt in re_AND.split(prompt):
            text, weight = re_weight.search(subprompt).groups()
            weight = float(weight) if weight is not None else 1.0
            if text not in index_of:
                index_of[text] = len(flat)
                flat.append(text)
            indexes.append((index_of[text], weight))
        res_indexes.append(indexes)
    return res_indexes, flat, index_of


def get_multicond_learned_conditioning(model, prompts, steps, hires_steps=None, use_old_scheduling=False):
    res_indexes, flat, _ = get_multicond_prompt_list(prompts)
    learned = get_learned_conditioning(model, flat, steps, hires_steps, use_old_scheduling)
    batch = [[ComposableScheduledPromptConditioning(learned[i], w) for i, w in indexes] for indexes in res_indexes]
    return MulticondLearnedConditioning(shape=(len(prompts),), batch=batch)


class DictWithShape(dict):
    def __init__(self, x, shape=None):
        super().__init__()
        self.update(x)

    @property
    def shape(self):
        return self["crossattn"].shape


def _at_step(schedules, current_step):
    for entry in schedules:
        if current_step <= entry.end_at_step:
            return entry.cond
    return schedules[0].cond


def _stack(conds):
    if isinstance(conds[0], dict):
        return DictWithShape({k: torch.stack([c[k] for c in conds]) for k in conds[0]})
    return torch.stack(conds)


def reconstruct_cond_batch(c, current_step):
    return _stack([_at_step(schedules, current_step) for schedules in c])


def reconstruct_multicond_batch(c, current_step):
    tensors, conds_list = [], []
    for composable_prompts in c.batch:
        conds_for_batch = []
        for composable in composable_prompts:
            conds_for_batch.append((len(tensors), composable.weight))
            tensors.append(_at_step(composable.schedules, current_step))
        conds_list.append(conds_for_batch)
    return conds_list, _stack(tensors)
