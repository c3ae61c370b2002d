"""What the WebUI tests expect to see, shared by the A1111 and Forge test modules."""

import pytest
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


def record_mask_blends(webui) -> list:
    """Add an always-on script to the stand-in that records, per inpainting blend of a denoiser
    call (its on_mask_blend callback), the call's p.w2sd_extra_call (None: the sampler's own)."""
    from modules import scripts

    blends = []

    class BlendRecorder(scripts.Script):
        def title(self):
            return "blend recorder"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def on_mask_blend(self, p, mba, *args):
            if mba.denoiser is not None:
                blends.append(getattr(p, "w2sd_extra_call", None))

    webui.extra_scripts.append(BlendRecorder())
    return blends


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


def expected_batches(webui, *args, **kwargs):
    """reflected_pattern as `webui` batches it (a harness whose WebUI batches some step its own way
    says so with a reflected_pattern method of the same arguments)."""
    return getattr(webui, "reflected_pattern", reflected_pattern)(*args, **kwargs)


def joint_tests(hires: dict) -> dict:
    """The joint-call tests, for a WebUI test module to take into its globals (`hires`: the
    generate() arguments of a hires-fix pass in that WebUI)."""
    passes = {
        "txt2img": dict(),
        "img2img": dict(img2img=True, denoising_strength=0.75),
        "inpainting": dict(img2img=True, mask=inpainting_mask(), denoising_strength=0.75),
        "hires": hires,
    }
    half = {"enabled": True, "reflect_steps": 0.5}

    @pytest.mark.parametrize("kind", list(JOINT_KINDS))
    @pytest.mark.parametrize("pass_name", list(passes))
    def test_joint_calls_give_the_two_call_image(webui, monkeypatch, kind, pass_name):
        w2sd = {**half, "hires": True, **JOINT_KINDS[kind]}
        assert_joint_equals_two_calls(webui, monkeypatch, w2sd, steps=4, batch_size=2, **passes[pass_name])

    def test_weak_prompt_adds_one_row_to_the_strong_calls_batch(webui):
        result = webui.generate({**half, "weak_prompt": "a dog"})
        assert result.batches() == expected_batches(webui, 6, 3, strong_rows=3, weak_rows=None, normal_rows=2)

    def test_a_weak_negative_prompt_keeps_two_calls(webui):
        """Its uncond rows would have to ride in the strong call as cond rows, which extensions that
        tell cond from uncond rows (IP-Adapter, ControlNet's soft modes) would misread."""
        result = webui.generate({**half, "weak_negative_prompt": "sharp"})
        assert result.batches() == expected_batches(webui, 6, 3, strong_rows=2, weak_rows=2, normal_rows=2)

    def test_weight_differences_keep_two_calls(webui):
        webui.add_lora()
        result = webui.generate({**half, "weak_cfg": 1.0, "weak_lora_multiplier": -1.0},
                                prompt="a red cat <lora:style:0.8>")
        assert result.batches() == expected_batches(webui, 6, 3, strong_rows=2, weak_rows=1, normal_rows=2)

    def test_equal_scales_in_a_joint_call_are_bit_identical_to_plain(webui):
        """Weak and strong both at CFG 5 (the pass's is 7): one joint call per reflected step whose two
        estimates are equal bit for bit, so the reflection is the identity (Euler: no history)."""
        plain = webui.generate(None)
        same = webui.generate({**half, "weak_cfg": 5.0, "strong_cfg": 5.0})
        assert torch.equal(same.latents, plain.latents)
        assert same.batches() == expected_batches(webui, 6, 3, 2, None, 2)
        assert same.p.extra_generation_params["W2SD gap"] == "0"

    return {name: value for name, value in locals().items() if name.startswith("test_")}


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
