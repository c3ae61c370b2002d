"""What the WebUI tests expect to see, shared by the A1111 and Forge test modules."""

import torch


def reflected_pattern(steps, reflected, strong_rows, weak_rows, normal_rows):
    """The UNet batch sizes of one pass: per reflected step a strong call and a weak call (the
    default weak_sigma 'start' measures the gap without a probe call), then the sampler's own.
    weak_rows None: the weak call was answered from the strong call's batch (a joint call)."""
    batches = []
    for i in range(steps):
        if i < reflected:
            batches += [("strong", strong_rows)] + ([("weak", weak_rows)] if weak_rows is not None else [])
        batches.append((None, normal_rows))
    return batches


def unet_batches(calls, unet_calls):
    """(role, rows) per UNet call, the role being that of the CFG denoiser call that made it: a
    call's UNet batches follow its cfg_denoiser callback, which noted `unet_index`, the UNet calls
    made before it. A weak call answered from a joint call's rows made none."""
    ends = [c.unet_index for c in calls[1:]] + [len(unet_calls)]
    return [(c.role, rows) for c, end in zip(calls, ends) for rows in unet_calls[c.unet_index:end]]


def assert_only_weak_calls_see_the_weak_prompt(result):
    """Every weak call got the same conds, other than the sampler's own; strong calls the own, to
    which a joint call adds the weak prompt's rows (at weight 0: they serve the weak call)."""
    own = [c.text_cond for c in result.calls if c.role is None]
    weak = [c.text_cond for c in result.calls if c.role == "weak"]
    strong = [c.text_cond for c in result.calls if c.role == "strong"]
    assert weak and strong
    assert all(torch.equal(w, weak[0]) for w in weak) and not torch.equal(weak[0], own[0])
    for s in strong:
        assert all(_has_row(s, row) for row in own[0])
        assert all(_has_row(own[0], row) or _has_row(weak[0], row) for row in s)


def _has_row(rows, row):
    return any(torch.equal(r, row) for r in rows)


# -- the joint strong+weak call ------------------------------------------------------------------
# Weak variants that differ from the strong one only in their condition: one UNet batch serves both.
JOINT_KINDS = {
    "Z-Sampling (weak CFG 1)": {"weak_cfg": 1.0},
    "weak CFG 3": {"weak_cfg": 3.0},
    "weak prompt": {"weak_cfg": None, "weak_prompt": "a dog"},
    "weak prompt and CFG": {"weak_cfg": 2.0, "weak_prompt": "a dog"},
}


def inpainting_mask(size=32):
    mask = torch.zeros(size, size)
    mask[:, : size // 2] = 1
    return mask


def assert_joint_equals_two_calls(webui, monkeypatch, w2sd, **kwargs):
    """The generation with joint calls has fewer UNet calls than with two calls per reflection, and
    the same image to float rounding; W2SD still changes the image."""
    import lib_w2sd.webui.common as common

    def generate(settings):
        torch.manual_seed(0)  # Forge's inpainting draws its pre-blend noise from the global RNG
        return webui.generate(settings, **kwargs)

    plain, joint = generate(None), generate(w2sd)
    with monkeypatch.context() as patch:
        patch.setattr(common, "make_joint_denoiser", lambda *args, **kw: None)
        two_calls = generate(w2sd)
    assert len(joint.unet_calls) < len(two_calls.unet_calls)
    assert "W2SD reflected" in joint.infotext and "W2SD warning" not in joint.infotext, joint.infotext
    torch.testing.assert_close(joint.latents, two_calls.latents, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(joint.latents, plain.latents)
