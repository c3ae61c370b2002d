"""What the WebUI tests expect to see, shared by the A1111 and Forge test modules."""

import torch


def reflected_pattern(steps, reflected, strong_rows, weak_rows, normal_rows):
    """The UNet batch sizes of one pass: per reflected step a strong call and a weak call (the
    default weak_sigma 'start' measures the gap without a probe call), then the sampler's own."""
    batches = []
    for i in range(steps):
        if i < reflected:
            batches += [("strong", strong_rows), ("weak", weak_rows)]
        batches.append((None, normal_rows))
    return batches


def assert_only_weak_calls_see_the_weak_prompt(result):
    """Every weak call got the same conds, other than the sampler's own; strong calls the own."""
    own = [c.text_cond for c in result.calls if c.role is None]
    weak = [c.text_cond for c in result.calls if c.role == "weak"]
    strong = [c.text_cond for c in result.calls if c.role == "strong"]
    assert weak and strong
    assert all(torch.equal(w, weak[0]) for w in weak) and not torch.equal(weak[0], own[0])
    assert all(torch.equal(s, own[0]) for s in strong)


def control_by_role(result):
    """role -> the set of what the ControlNet units did in that role's UNet calls, each as sorted
    ((unit, weights used), ...): one element per role means every such call got the same."""
    assert len(result.control) == len(result.calls)
    seen = {}
    for call, entry in zip(result.calls, result.control):
        seen.setdefault(call.role, set()).add(tuple(sorted((str(k), tuple(v)) for k, v in entry.items())))
    return seen
