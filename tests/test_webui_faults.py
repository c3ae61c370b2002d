"""Interrupts, skips and errors during W2SD generations in the A1111 stand-in: sampling stops as
soon as plain sampling would, the error policy holds, and the WebUI comes out exactly as it went
in (a plain generation afterwards is bit-identical to one before)."""

import pytest
import torch

STAND_IN = "stubs"
CFG1 = {"enabled": True, "weak_cfg": 1.0, "reflect_steps": 1.0}


def snapshot(webui):
    """Everything a W2SD generation may touch and must give back."""
    import networks
    from modules import shared

    return (dict(shared.opts.data), webui.model.model.diffusion_model,
            [(n.name, n.unet_multiplier, n.te_multiplier) for n in networks.loaded_networks],
            {k: v.clone() for k, v in webui.model.unet.state_dict().items()})


def same(a, b):
    opts_a, unet_a, nets_a, weights_a = a
    opts_b, unet_b, nets_b, weights_b = b
    return (opts_a == opts_b and unet_a is unet_b and nets_a == nets_b
            and all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a))


def at_weak_call(webui, step, action):
    def observe(call, p):
        if call.role == "weak" and call.step == step:
            action()

    webui.observers.append(observe)


def test_interrupt_during_a_reflection_stops_at_the_next_call(webui):
    from modules import shared

    webui.add_lora()
    prompt = "a red cat <lora:style:0.8>"
    before = webui.generate(None, prompt=prompt, sampler_name="Euler a")
    state = snapshot(webui)
    at_weak_call(webui, 2, shared.state.interrupt)
    w2sd = {**CFG1, "weak_lora_multiplier": -1.5}
    result = webui.generate(w2sd, prompt=prompt, sampler_name="Euler a")
    assert result.roles()[-1] == "weak"  # nothing ran after the call that saw the interrupt
    assert not hasattr(result.p.sampler.func, "w2sd_original")
    assert result.p.sampler.model_wrap_cfg.step == 2  # the reflection's calls were not counted
    webui.observers.clear()
    assert same(snapshot(webui), state)
    assert torch.equal(webui.generate(None, prompt=prompt, sampler_name="Euler a").latents, before.latents)


def test_interrupt_returns_the_last_own_prediction_as_plain_sampling_does(webui):
    from modules import shared

    at_weak_call(webui, 3, shared.state.interrupt)
    result = webui.generate(CFG1)
    own = [i for i, role in enumerate(result.roles()) if role is None]
    assert len(own) == 3  # steps 0, 1, 2 ran; the reflection of step 3 was cut short
    assert result.latents.shape == (1, 4, 4, 4)


def test_skip_during_a_reflection_skips_only_that_image(webui):
    from modules import shared

    fired = []

    def skip_once():
        if not fired:
            fired.append(True)
            shared.state.skip()

    at_weak_call(webui, 1, skip_once)
    result = webui.generate(CFG1, n_iter=2)
    first, second = result.roles()[:5], result.roles()[5:]
    assert first == ["strong", "weak", None, "strong", "weak"]  # skipped at step 1's weak call
    assert second.count(None) == 6 and second.count("weak") == 5


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M SDE"])
def test_error_in_a_weak_call_falls_back_to_the_plain_image(webui, sampler):
    before = webui.generate(None, sampler_name=sampler)
    state = snapshot(webui)

    def fail():
        raise RuntimeError("boom in an extension hook")

    at_weak_call(webui, 2, fail)
    result = webui.generate(CFG1, sampler_name=sampler)
    assert torch.equal(result.latents, before.latents)  # redone plain with the same noise
    assert "W2SD: failed in the txt2img pass: RuntimeError: boom" in result.processed.comments
    assert "generated without W2SD" in result.infotext
    webui.observers.clear()
    assert same(snapshot(webui), state)


def test_error_with_fail_policy_fails_and_leaves_the_webui_as_it_was(webui):
    from lib_w2sd.webui.common import W2SDFailure

    webui.add_lora()
    prompt = "a red cat <lora:style:0.8>"
    webui.settings(w2sd_on_error="fail")
    before = webui.generate(None, prompt=prompt)
    state = snapshot(webui)

    def fail():
        raise RuntimeError("boom")

    at_weak_call(webui, 1, fail)
    with pytest.raises(W2SDFailure, match="W2SD: failed in the txt2img pass"):
        webui.generate({**CFG1, "weak_lora_multiplier": -1.0}, prompt=prompt)
    webui.observers.clear()
    assert same(snapshot(webui), state)
    assert torch.equal(webui.generate(None, prompt=prompt).latents, before.latents)


def test_bad_field_falls_back_with_a_message_naming_it(webui):
    before = webui.generate(None)
    result = webui.generate({"enabled": True, "weak_cfg": 99})
    assert torch.equal(result.latents, before.latents)
    sentence = ("Weak CFG (weak_cfg) must be a number from 0 to 30; null means the generation's CFG "
                "(no CFG difference); got 99 (generated without W2SD)")
    assert result.processed.comments.strip() == "W2SD: " + sentence  # one sentence, the same as in the infotext
    assert f"W2SD warning: \"{sentence}\"" in result.infotext or f"W2SD warning: {sentence}" in result.infotext


def test_bad_field_with_fail_policy_fails(webui):
    from lib_w2sd.webui.common import W2SDFailure

    webui.settings(w2sd_on_error="fail")
    with pytest.raises(W2SDFailure, match="weak_cfg"):
        webui.generate({"enabled": True, "weak_cfg": "high"})


def test_unsupported_sampler_with_fail_policy_fails(webui):
    from lib_w2sd.webui.common import W2SDFailure

    webui.settings(w2sd_on_error="fail")
    with pytest.raises(W2SDFailure, match="DPM adaptive"):
        webui.generate(CFG1, sampler_name="DPM adaptive")


def test_no_hook_error_reaches_the_webuis_log(webui):
    from modules import errors

    webui.generate(CFG1, enable_hr=True, hr_second_pass_steps=4)
    webui.generate(CFG1, img2img=True)
    assert errors.reported == []
