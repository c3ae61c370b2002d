"""The ControlNet weak kind on the Forge stand-in with its built-in ControlNet's stand-in
(tests/stubs_forge/sd_forge_controlnet, backend/patcher/controlnet.py): per UNet batch, which
linked-list nodes ran and at which strength, and the IP-Adapter weights. The sampler's own calls
and the strong calls run the units, the weak calls without the linked list (or at the
multiplier); nothing is left changed, whatever happens."""

import pytest
import torch
from webui_patterns import (
    assert_left_out_with_a_warning,
    assert_unit_timing_holds_in_the_reflections,
    assert_weak_equal_to_strong_is_plain,
    control_by_role,
)

STAND_IN = "stubs_forge"
CN = {"enabled": True, "weak_controlnet_weight": 0.0, "reflect_steps": 0.5}
UNIT = {"model": "tiny-controlnet", "weight": 0.8}
IP_ADAPTER = {"model": "tiny-ip-adapter", "weight": 0.6}


def units_state(webui):
    """The last pass's UNet patcher: its linked list's strengths and its IP-Adapter weights."""
    unet = webui.model.forge_objects.unet
    patches = unet.model_options["transformer_options"].get("patches_replace", {}).get("attn2", {}).values()
    return [node.strength for node in unet.list_controlnets()], [list(patch.weights) for patch in patches]


def test_weak_calls_run_without_the_linked_list(webui):
    plain = webui.generate(None, controlnet=[UNIT])
    assert plain.control == [{"controlnet": [0.8]}] * 6
    result = webui.generate(CN, controlnet=[UNIT])
    seen = control_by_role(result)
    assert seen[None] == seen["strong"] == {(("controlnet", (0.8,)),)}
    assert seen["weak"] == {()}
    assert len(webui.control_calls()) == 6 + 3  # no control model ran for a weak call
    assert not torch.equal(result.latents, plain.latents)
    assert "W2SD: ControlNet" in result.infotext and "W2SD warning" not in result.infotext


def test_multipliers_scale_every_unit(webui):
    units = [dict(UNIT, weight=1.0), dict(UNIT, weight=0.5)]
    result = webui.generate({**CN, "weak_controlnet_weight": 0.5, "strong_controlnet_weight": 1.5}, controlnet=units)
    seen = control_by_role(result)
    assert seen[None] == {(("controlnet", (1.0, 0.5)),)}
    assert seen["strong"] == {(("controlnet", (1.5, 0.75)),)}
    assert seen["weak"] == {(("controlnet", (0.5, 0.25)),)}
    assert units_state(webui) == ([0.5, 1.0], [])  # head first: the last unit applied


def test_ip_adapter_units_count_and_switch(webui):
    result = webui.generate(CN, controlnet=[UNIT, IP_ADAPTER])
    seen = control_by_role(result)
    assert seen[None] == seen["strong"] == {(("controlnet", (0.8,)), ("ip-adapter", (0.6,)))}
    assert seen["weak"] == {(("ip-adapter", (0.0,)),)}  # Forge's patch still runs, times 0
    alone = webui.generate({**CN, "weak_controlnet_weight": 0.5}, controlnet=[IP_ADAPTER])
    assert control_by_role(alone)["weak"] == {(("ip-adapter", (0.3,)),)}
    assert "W2SD warning" not in alone.infotext and units_state(webui) == ([], [[0.6]])


def test_unit_timing_holds_in_the_reflections(webui):
    assert_unit_timing_holds_in_the_reflections(webui, CN, [UNIT, dict(UNIT, weight=0.5, guidance_start=0.5)])


def test_weak_equal_to_strong_gives_the_plain_image_with_the_gap_warning(webui):
    assert_weak_equal_to_strong_is_plain(webui, CN, [UNIT, IP_ADAPTER])


@pytest.mark.parametrize("units", [[], None, [dict(UNIT, enabled=False)]])
def test_no_unit_leaves_the_kind_out_with_a_warning(webui, units):
    warning = "no active ControlNet unit in the txt2img pass: the ControlNet difference is left out"
    assert_left_out_with_a_warning(webui, CN, units, warning)


def test_hires_pass_without_its_units_leaves_the_kind_out_there(webui):
    w2sd = {**CN, "hires": True, "hires_reflect_steps": 0.5}
    result = webui.generate(w2sd, controlnet=[dict(UNIT, hr_option="Low res only")], enable_hr=True,
                            hr_second_pass_steps=4, denoising_strength=0.5, hr_cfg=7.0)
    assert "no active ControlNet unit in the hires pass" in result.infotext
    assert "no active ControlNet unit in the txt2img pass" not in result.infotext
    first = [(c.role, e) for c, e in zip(result.calls, result.control)][:9]
    assert [e for role, e in first if role == "weak"] == [{}] * 3


def test_weak_checkpoint_and_controlnet(webui):
    webui.add_checkpoint("weak.safetensors", seed=5)
    w2sd = {**CN, "weak_checkpoint": "weak.safetensors"}
    result = webui.generate(w2sd, controlnet=[UNIT])
    weak = [(c.unet, e) for c, e in zip(result.calls, result.control) if c.role == "weak"]
    assert weak == [("weak", {})] * 3
    half = webui.generate({**w2sd, "weak_controlnet_weight": 0.5}, controlnet=[UNIT])
    assert control_by_role(half)["weak"] == {(("controlnet", (0.4,)),)}
    assert webui.model.forge_objects.unet.controlnet_linked_list.strength == 0.8


def test_img2img_inpainting(webui):
    mask = torch.zeros(32, 32)
    mask[:, :16] = 1
    result = webui.generate(CN, controlnet=[UNIT], img2img=True, mask=mask, denoising_strength=0.75, steps=8)
    assert control_by_role(result)["weak"] == {()} and "W2SD warning" not in result.infotext
    assert torch.allclose(result.latents[:, :, :, 2:], result.p.init_latent[:, :, :, 2:])


def test_interrupt_in_a_weak_call_leaves_the_units_as_they_were(webui):
    from modules import shared

    units = [UNIT, IP_ADAPTER]
    before = webui.generate(None, controlnet=units)

    def stop(call, p):
        if call.role == "weak" and call.step == 1:
            shared.state.interrupted = True

    webui.observers.append(stop)
    result = webui.generate(CN, controlnet=units)
    assert result.roles()[-1] == "weak"
    assert units_state(webui) == ([0.8], [[0.6]])
    webui.observers.clear()
    assert torch.equal(webui.generate(None, controlnet=units).latents, before.latents)


def test_error_in_a_weak_call_restores_and_falls_back(webui):
    before = webui.generate(None, controlnet=[UNIT, IP_ADAPTER])

    def fail(call, p):
        if call.role == "weak" and call.step == 2:
            raise RuntimeError("boom")

    webui.observers.append(fail)
    result = webui.generate({**CN, "weak_controlnet_weight": 0.5}, controlnet=[UNIT, IP_ADAPTER])
    assert torch.equal(result.latents, before.latents)
    assert "failed in the txt2img pass: RuntimeError: boom (generated without W2SD)" in result.infotext
    assert units_state(webui) == ([0.8], [[0.6]])
    webui.observers.clear()
    assert torch.equal(webui.generate(None, controlnet=[UNIT, IP_ADAPTER]).latents, before.latents)
