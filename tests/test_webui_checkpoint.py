"""The weak checkpoint kind through the A1111 stand-in: a real .safetensors file written by the
test, only its UNet loaded into a copy of the current one, cached, refused when pickled or of
another architecture."""

import pytest
import torch

STAND_IN = "stubs"
WEAK = {"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5}


@pytest.fixture
def weak_file(webui, tmp_path):
    import harness
    import tiny_sd

    weak_unet = tiny_sd.TinyUNet(seed=7)
    harness.write_checkpoint(tmp_path / "weak.safetensors", weak_unet)
    webui.register_checkpoints(tmp_path)
    return weak_unet


def cached():
    from lib_w2sd.webui.adapters import checkpoint

    return checkpoint.cache.entry


def test_weak_call_runs_the_checkpoints_unet_and_the_model_comes_back(webui, weak_file):
    plain = webui.generate(None)
    result = webui.generate(WEAK)
    weak = cached().module
    assert weak.calls == [2, 2, 2]  # one weak call per reflected step, on the weak UNet
    assert result.unet_calls == [2] * 9  # 6 own + 3 strong calls on the model's UNet
    assert webui.model.model.diffusion_model is webui.model.unet
    for key, value in weak_file.state_dict().items():
        assert torch.equal(weak.state_dict()[key], value)
    assert not torch.equal(plain.latents, result.latents)
    assert "W2SD gap" in result.infotext


def test_weak_unet_costs_one_unet_and_is_reused_across_generations(webui, weak_file):
    from lib_w2sd.webui.adapters import checkpoint

    webui.generate(WEAK)
    first = cached()
    assert checkpoint.module_bytes(first.module) == checkpoint.module_bytes(webui.model.unet)
    webui.generate(WEAK)
    assert cached() is first


@pytest.mark.parametrize("policy,kept", [("gpu", True), ("offload", True), ("unload", False)])
def test_memory_policy(webui, weak_file, policy, kept):
    webui.settings(w2sd_checkpoint_memory=policy)
    webui.generate(WEAK)
    assert (cached() is not None) == kept


def test_weak_copy_carries_no_lora_bookkeeping(webui, weak_file):
    webui.add_lora()
    prompt = "a red cat <lora:style:0.8>"
    before = webui.generate(None, prompt=prompt)
    webui.generate(WEAK, prompt=prompt)
    assert not any(name.startswith("network_") for m in cached().module.modules() for name in vars(m))
    after = webui.generate(None, prompt=prompt)
    assert torch.equal(before.latents, after.latents)


def test_pickled_checkpoint_is_refused(webui, tmp_path):
    (tmp_path / "old.ckpt").write_bytes(b"a pickle W2SD must never load")
    webui.register_checkpoints(tmp_path)
    plain = webui.generate(None)
    result = webui.generate({**WEAK, "weak_checkpoint": "old.ckpt"})
    assert torch.equal(plain.latents, result.latents)
    assert ".safetensors" in result.processed.comments and "generated without W2SD" in result.processed.comments
    assert "W2SD warning" in result.infotext


def test_other_architecture_is_a_clear_error(webui, tmp_path):
    import harness
    import tiny_sd

    harness.write_checkpoint(tmp_path / "inpaint.safetensors", tiny_sd.TinyUNet(in_channels=9))
    webui.register_checkpoints(tmp_path)
    result = webui.generate({**WEAK, "weak_checkpoint": "inpaint.safetensors"})
    assert "does not fit the loaded model's UNet" in result.processed.comments
    assert "[8, 9, 3, 3] there but [8, 4, 3, 3]" in result.processed.comments
    assert set(result.roles()) == {None}


def test_name_not_in_the_list_is_refused(webui, weak_file):
    result = webui.generate({**WEAK, "weak_checkpoint": "/etc/passwd"})
    assert "weak_checkpoint" in result.processed.comments
    assert set(result.roles()) == {None}


def test_fail_policy_stops_the_generation_with_the_message(webui, tmp_path):
    from lib_w2sd.webui.common import W2SDFailure

    (tmp_path / "old.ckpt").write_bytes(b"x")
    webui.register_checkpoints(tmp_path)
    webui.settings(w2sd_on_error="fail")
    before = webui.generate(None)
    with pytest.raises(W2SDFailure, match="not a .safetensors file"):
        webui.generate({**WEAK, "weak_checkpoint": "old.ckpt"})
    assert torch.equal(webui.generate(None).latents, before.latents)


def test_weak_copy_runs_without_hooks_set_on_the_models_unet(webui, weak_file):
    seen = []
    unet = webui.model.unet
    original_forward = unet.forward

    def hooked(*args, **kwargs):  # what an extension patching the UNet instance does
        seen.append("hooked")
        return original_forward(*args, **kwargs)

    unet.forward = hooked
    handle = unet.register_forward_pre_hook(lambda module, args: seen.append("pre-hook"))
    try:
        webui.generate(WEAK)
    finally:
        handle.remove()
        del unet.forward
    assert cached().module.calls == [2, 2, 2]  # the weak calls ran the weak UNet itself
    assert seen.count("hooked") == seen.count("pre-hook") == 9  # the model's own calls only
