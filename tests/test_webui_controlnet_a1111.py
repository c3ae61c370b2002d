"""The ControlNet weak kind on the A1111 stand-in with the sd-webui-controlnet stand-in
(tests/stubs/controlnet_ext): per UNet call, which units the extension's hook applied and at
which weight. The sampler's own calls and the reflections' strong calls run the units, the weak
calls run without them (or at the multiplier); nothing is left changed, whatever happens."""

import pytest
import torch
from webui_patterns import (
    assert_left_out_with_a_warning,
    assert_only_weak_calls_see_the_weak_prompt,
    assert_unit_timing_holds_in_the_reflections,
    assert_weak_equal_to_strong_is_plain,
    control_by_role,
)

STAND_IN = "stubs"
CN = {"enabled": True, "weak_controlnet_weight": 0.0, "reflect_steps": 0.5}
UNIT = {"model": "tiny-controlnet", "weight": 0.8}
IP_ADAPTER = {"model": "tiny-ip-adapter", "weight": 0.6}


def controlnet_state(webui):
    """What W2SD may touch of the extension: the hook's unit list, each unit's weights, the
    IP-Adapter weights (same objects afterwards)."""
    hook = webui.controlnet.latest_network
    if hook is None:
        return None
    return (hook.control_params, [(p.weight, p.advanced_weighting, p.control_model.weight
                                   if p.control_model_type.name == "IPAdapter" else None)
                                  for p in hook.control_params])


def test_weak_calls_run_without_the_units(webui):
    plain = webui.generate(None, controlnet=[UNIT])
    assert plain.control == [{0: (0.8, 0.8)}] * 6
    result = webui.generate(CN, controlnet=[UNIT])
    seen = control_by_role(result)
    assert seen[None] == seen["strong"] == {(("0", (0.8, 0.8)),)}
    assert seen["weak"] == {()}
    assert len(webui.control_calls()) == 6 + 3  # the control model never ran for a weak call
    assert not torch.equal(result.latents, plain.latents)
    assert "W2SD: ControlNet" in result.infotext and "W2SD weak ControlNet: 0" in result.infotext
    assert "W2SD warning" not in result.infotext


def test_multipliers_scale_every_weight_of_the_units(webui):
    units = [dict(UNIT, advanced_weighting=[1.0, 0.5]), dict(UNIT, weight=0.5)]
    result = webui.generate({**CN, "weak_controlnet_weight": 0.5, "strong_controlnet_weight": 1.5}, controlnet=units)
    seen = control_by_role(result)
    assert seen[None] == {(("0", (1.0, 0.5)), ("1", (0.5, 0.5)))}
    assert seen["strong"] == {(("0", (1.5, 0.75)), ("1", (0.75, 0.75)))}
    assert seen["weak"] == {(("0", (0.5, 0.25)), ("1", (0.25, 0.25)))}


def test_ip_adapter_units_count_and_switch(webui):
    result = webui.generate(CN, controlnet=[UNIT, IP_ADAPTER])
    seen = control_by_role(result)
    assert seen[None] == seen["strong"] == {(("0", (0.8, 0.8)), ("ip-adapter", (0.6,)))}
    assert seen["weak"] == {()}
    alone = webui.generate({**CN, "weak_controlnet_weight": 0.5}, controlnet=[IP_ADAPTER])
    assert control_by_role(alone)["weak"] == {(("ip-adapter", (0.3,)),)}
    assert "W2SD warning" not in alone.infotext


def test_unit_timing_holds_in_the_reflections(webui):
    assert_unit_timing_holds_in_the_reflections(webui, CN, [UNIT, dict(UNIT, weight=0.5, guidance_end=0.5)])


def test_weak_equal_to_strong_gives_the_plain_image_with_the_gap_warning(webui):
    assert_weak_equal_to_strong_is_plain(webui, CN, [UNIT])


@pytest.mark.parametrize("units, warning", [
    ([], "no active ControlNet unit in the txt2img pass: the ControlNet difference is left out"),
    (None, "needs the ControlNet extension (sd-webui-controlnet on AUTOMATIC1111), which is not loaded"),
])
def test_no_unit_leaves_the_kind_out_with_a_warning(webui, units, warning):
    plain = assert_left_out_with_a_warning(webui, CN, units, warning)
    cfg = webui.generate({**CN, "weak_cfg": 1.0}, controlnet=units)  # another kind still runs
    assert not torch.equal(cfg.latents, plain.latents)


def test_hires_pass_without_its_units_leaves_the_kind_out_there(webui):
    w2sd = {**CN, "hires": True, "hires_reflect_steps": 0.5}
    result = webui.generate(w2sd, controlnet=[dict(UNIT, hr_option="Low res only")], enable_hr=True,
                            hr_second_pass_steps=4, denoising_strength=0.5)
    assert "no active ControlNet unit in the hires pass" in result.infotext
    assert "no active ControlNet unit in the txt2img pass" not in result.infotext
    first = [(c.role, e) for c, e in zip(result.calls, result.control)][:9]
    assert [e for role, e in first if role == "weak"] == [{}] * 3


def test_weak_prompt_conds_get_the_extensions_marking(webui):
    result = webui.generate({**CN, "weak_controlnet_weight": None, "weak_prompt": "a dog"}, controlnet=[UNIT])
    assert "W2SD failed" not in result.infotext
    assert_only_weak_calls_see_the_weak_prompt(result)
    combined = webui.generate({**CN, "weak_prompt": "a dog", "weak_cfg": 1.0}, controlnet=[UNIT])
    assert "W2SD failed" not in combined.infotext
    assert control_by_role(combined)["weak"] == {()}
    hires = webui.generate({**CN, "weak_prompt": "a dog", "hires": True}, controlnet=[UNIT], enable_hr=True,
                           hr_second_pass_steps=4, denoising_strength=0.5)
    assert "W2SD failed" not in hires.infotext and "W2SD hires reflected: 2/4" in hires.infotext


def test_weak_checkpoint_gets_the_conds_without_the_extensions_marking(webui, tmp_path):
    import harness
    import tiny_sd

    harness.write_checkpoint(tmp_path / "weak.safetensors", tiny_sd.TinyUNet(seed=7))
    webui.register_checkpoints(tmp_path)
    w2sd = {"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5}
    webui.generate(w2sd)
    from lib_w2sd.webui.adapters import checkpoint

    weak = checkpoint.cache.entry.module
    seen = []  # the text conditioning the weak UNet computes with: the mean of its context tokens
    weak.context.register_forward_pre_hook(lambda m, args: seen.append(float(args[0].abs().max())))
    result = webui.generate({**w2sd, "weak_controlnet_weight": 0.5}, controlnet=[UNIT])
    assert len(seen) == 3 and max(seen) < 10  # a mark token (+-1024 among 7) would read above 100
    assert "W2SD warning" not in result.infotext and "forward" not in vars(weak)


def test_img2img_inpainting(webui):
    mask = torch.zeros(32, 32)
    mask[:, :16] = 1
    result = webui.generate(CN, controlnet=[UNIT], img2img=True, mask=mask, denoising_strength=0.75, steps=8)
    assert control_by_role(result)["weak"] == {()}
    assert torch.allclose(result.latents[:, :, :, 2:], result.p.init_latent[:, :, :, 2:])


# -- restoring --------------------------------------------------------------------------------------
def at_weak_call(webui, step, action):
    def observe(call, p):
        if call.role == "weak" and call.step == step:
            action()

    webui.observers.append(observe)


def test_interrupt_in_a_weak_call_leaves_the_units_as_they_were(webui, monkeypatch):
    from modules import shared

    units = [dict(UNIT, advanced_weighting=[1.0, 0.5]), IP_ADAPTER]
    before = webui.generate(None, controlnet=units)
    seen = []
    postprocess = webui.controlnet.postprocess

    def spy(p, processed, *args):
        seen.append(controlnet_state(webui))
        return postprocess(p, processed, *args)

    monkeypatch.setattr(webui.controlnet, "postprocess", spy)
    webui.generate(None, controlnet=units)
    at_weak_call(webui, 1, shared.state.interrupt)
    result = webui.generate(CN, controlnet=units)  # weight 0: the call ran with no unit list at all
    assert result.roles()[-1] == "weak"
    plain_state, w2sd_state = seen
    assert w2sd_state[1] == plain_state[1] == [(0.8, [1.0, 0.5], None), (0.6, None, 0.6)]
    webui.observers.clear()
    assert torch.equal(webui.generate(None, controlnet=units).latents, before.latents)


def test_error_in_a_weak_call_restores_and_falls_back(webui):
    before = webui.generate(None, controlnet=[UNIT, IP_ADAPTER])

    def fail():
        raise RuntimeError("boom")

    at_weak_call(webui, 2, fail)
    result = webui.generate(CN, controlnet=[UNIT, IP_ADAPTER])
    assert torch.equal(result.latents, before.latents)  # redone plain, the units at their own weights
    assert "failed in the txt2img pass: RuntimeError: boom (generated without W2SD)" in result.infotext
    webui.observers.clear()
    assert torch.equal(webui.generate(None, controlnet=[UNIT, IP_ADAPTER]).latents, before.latents)


def test_error_with_fail_policy_leaves_the_hook_as_it_was(webui):
    from lib_w2sd.webui.common import W2SDFailure

    webui.settings(w2sd_on_error="fail")

    def fail():
        raise RuntimeError("boom")

    at_weak_call(webui, 1, fail)
    with pytest.raises(W2SDFailure):
        webui.generate(CN, controlnet=[UNIT, IP_ADAPTER])
    hook = webui.controlnet.latest_network  # postprocess did not run: the hook is still on
    assert len(hook.control_params) == 2 and controlnet_state(webui)[1] == [(0.8, None, None), (0.6, None, 0.6)]
