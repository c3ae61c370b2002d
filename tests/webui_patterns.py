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


def same_conds(a, b) -> bool:
    """Equal conditioning: tensors, or SDXL's dicts {crossattn, vector} key by key."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and \
            all(torch.equal(a[k], b[k]) for k in a)
    return torch.equal(a, b)


def assert_weak_conds_are_the_webuis_own(w2sd, reference, hires: bool):
    """The weak calls of one pass of `w2sd` got exactly the conds the WebUI itself made for the
    sampler's own calls of that pass in `reference` (a plain generation with the weak prompts as
    its prompts, same sizes and settings): cond and uncond, SDXL's size and crop vector included."""
    weak = [c for c in w2sd.calls if c.role == "weak" and c.hires == hires]
    own = [c for c in reference.calls if c.role is None and c.hires == hires]
    assert weak and own
    for call in weak:
        assert same_conds(call.text_cond, own[0].text_cond)
        assert same_conds(call.text_uncond, own[0].text_uncond)


def check_sdxl_weak_conds_follow_size_and_crop(webui, sizes: dict):
    """On an SDXL model with a hires pass (`sizes`): the weak prompts' conds are the WebUI's own for
    each pass; the pass's size (hires: the upscaled one) and the crop settings are in their vector."""
    def weak_cond(result, hires):
        return next(c.text_cond for c in result.calls if c.role == "weak" and c.hires == hires)

    w2sd = {"enabled": True, "weak_prompt": "a dog", "weak_negative_prompt": "sharp", "reflect_steps": 0.5,
            "hires": True}
    webui.settings(sdxl_crop_top=16, sdxl_crop_left=8)
    result = webui.generate(w2sd, **sizes)
    reference = webui.generate(None, prompt="a dog", negative_prompt="sharp", **sizes)
    for hires in (False, True):
        assert_weak_conds_are_the_webuis_own(result, reference, hires)
    first, second = weak_cond(result, False), weak_cond(result, True)
    assert torch.equal(first["crossattn"], second["crossattn"]) and not torch.equal(first["vector"], second["vector"])
    webui.settings(sdxl_crop_top=0, sdxl_crop_left=0)
    assert not torch.equal(weak_cond(webui.generate(w2sd, **sizes), False)["vector"], first["vector"])
