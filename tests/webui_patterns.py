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


def assert_weak_equal_to_strong_is_plain(webui, w2sd, units):
    """A weak ControlNet weight of 1 (the strong call's): the plain image, bit for bit, with the
    near-zero-gap warning."""
    plain = webui.generate(None, controlnet=units)
    same = webui.generate({**w2sd, "weak_controlnet_weight": 1.0}, controlnet=units)
    assert torch.equal(same.latents, plain.latents)
    assert same.p.extra_generation_params["W2SD gap"] == "0" and "barely differ" in same.infotext


def assert_left_out_with_a_warning(webui, w2sd, units, warning):
    """The ControlNet kind cannot apply: the plain image and `warning` under it and in the infotext."""
    plain = webui.generate(None, controlnet=units)
    result = webui.generate(w2sd, controlnet=units)
    assert torch.equal(result.latents, plain.latents)
    assert warning in result.processed.comments and warning in result.infotext
    return plain


def assert_unit_timing_holds_in_the_reflections(webui, w2sd, units):
    """With a unit acting on part of the steps only (`units[1]`), every reflection's strong call
    gets the units exactly as the sampler's own call of its step does (6 steps, 5 reflected)."""
    result = webui.generate({**w2sd, "reflect_steps": 1.0}, controlnet=units)
    own = [entry for call, entry in zip(result.calls, result.control) if call.role is None]
    strong = [entry for call, entry in zip(result.calls, result.control) if call.role == "strong"]
    assert strong == own[:5] and own[0] != own[5]
