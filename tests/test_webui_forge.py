"""The real scripts/w2sd.py driven through the Forge stand-in (tests/stubs_forge, Forge dfdcbab6):
every weak kind through Forge's CFG denoiser and backend (sampling_function, UNet patchers,
LoRA patches, the loader, the memory manager), the hires pass with its two hooks, inpainting,
and restoration after errors and interrupts. A tiny UNet on the CPU, real k-diffusion samplers."""

import pytest
import torch
from webui_patterns import (
    assert_only_weak_calls_see_the_weak_prompt,
    check_sdxl_weak_conds_follow_size_and_crop,
    joint_tests,
    record_mask_blends,
    reflected_pattern,
    same_conds,
)

STAND_IN = "stubs_forge"
CFG1 = {"enabled": True, "weak_cfg": 1.0, "reflect_steps": 0.5}
LORA = {"enabled": True, "weak_lora_multiplier": -1.5, "strong_lora_multiplier": 1.5, "reflect_steps": 0.5}
LORA_PROMPT = "a red cat <lora:style:0.8>"


def lora_attachments(model):
    """Modules carrying Forge online-LoRA patches (none once W2SD is done)."""
    return [m for m in model.modules() if "forge_online_loras" in vars(m)]


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- the adapter ----------------------------------------------------------------------------------
def test_forge_is_detected(webui):
    from lib_w2sd.webui import detect_backend
    from lib_w2sd.webui.adapters.forge import ForgeBackend

    assert isinstance(detect_backend(), ForgeBackend)


def test_disabled_changes_nothing(webui):
    plain = webui.generate(None)
    off = webui.generate({"enabled": False, "weak_cfg": 1.0})
    assert torch.equal(plain.latents, off.latents)
    assert off.roles() == [None] * 6


# -- CFG ------------------------------------------------------------------------------------------
def test_weak_cfg_1_comes_from_the_strong_calls_batch(webui):
    result = webui.generate(CFG1, batch_size=2)
    assert result.batches() == reflected_pattern(6, 3, strong_rows=4, weak_rows=None, normal_rows=4)
    assert result.roles()[:3] == ["strong", "weak", None]
    assert "W2SD reflected: 3/6" in result.infotext


def test_weak_cfg_1_in_a_call_of_its_own_runs_the_conditional_batch_only(webui, monkeypatch):
    """Where the weak call cannot share the strong call's batch (here: joint calls switched off),
    at scale 1 it skips the uncond rows."""
    import lib_w2sd.webui.common as common

    monkeypatch.setattr(common, "make_joint_denoiser", lambda *args, **kw: None)
    result = webui.generate(CFG1, batch_size=2)
    assert result.batches() == reflected_pattern(6, 3, strong_rows=4, weak_rows=2, normal_rows=4)


def test_weak_cfg_other_than_1_changes_the_image(webui):
    plain = webui.generate(None)
    weak3 = webui.generate({**CFG1, "weak_cfg": 3.0})
    weak1 = webui.generate(CFG1)
    assert weak3.batches() == reflected_pattern(6, 3, 2, None, 2)
    assert not torch.equal(weak3.latents, plain.latents)
    assert not torch.equal(weak3.latents, weak1.latents)


def test_generation_at_cfg_1_still_gives_a_strong_cfg_its_uncond(webui):
    """Forge encodes no negative prompt at CFG 1; W2SD encodes it in the hook, never mid-sampling."""
    result = webui.generate({**CFG1, "strong_cfg": 5.0}, cfg_scale=1.0)
    assert result.batches() == reflected_pattern(6, 3, strong_rows=2, weak_rows=None, normal_rows=1)
    assert ("blurry", False) in webui.encoded
    assert not any(during for _, during in webui.encoded)


@pytest.mark.parametrize("strong_cfg, strong", [(5.0, 5.0), (None, 3.0)])
def test_hires_pass_uses_hr_cfg_and_the_w2sd_scales(webui, strong_cfg, strong):
    """Forge's hires denoiser takes its scale from p.hr_cfg, not from cond_scale: the weak and strong
    calls set it for themselves (the strong one at the pass's own hr_cfg unless strong_cfg says
    otherwise) and put it back."""
    hires = {**CFG1, "strong_cfg": strong_cfg, "hires": True, "hires_reflect_steps": 0.5}
    result = webui.generate(hires, enable_hr=True, hr_scale=1.5, hr_cfg=3.0, steps=4)
    scales = [(c.role, c.hr_cfg) for c in result.calls if c.hr_cfg is not None]
    assert scales == [("strong", strong), ("weak", 1.0), (None, 3.0), ("strong", strong), ("weak", 1.0),
                      (None, 3.0), (None, 3.0), (None, 3.0)]
    assert result.p.hr_cfg == 3.0
    assert "W2SD hires reflected: 2/4" in result.infotext


def test_hires_pass_runs_its_hook_twice_and_keeps_nothing_on_forge_objects(webui):
    from modules import scripts

    hooks = []

    class HookCounter(scripts.Script):
        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def process_before_every_sampling(self, p, *args, **kwargs):
            hooks.append((p.is_hr_pass, p.sd_model.forge_objects.unet))

    webui.extra_scripts.append(HookCounter())
    result = webui.generate({**CFG1, "hires": True}, enable_hr=True, hr_scale=1.5, hr_cfg=7.0, steps=4)
    assert [hr for hr, _ in hooks] == [False, True, True]
    assert "W2SD hires reflected" in result.infotext
    after_lora = webui.model.forge_objects_after_applying_lora.unet
    assert webui.model.forge_objects.unet is after_lora
    assert all(unet is after_lora for _, unet in hooks)


def test_hires_off_leaves_the_second_pass_plain(webui):
    result = webui.generate(CFG1, enable_hr=True, hr_scale=1.5, hr_cfg=7.0, steps=4)
    assert all(c.role is None for c in result.calls if c.hr_cfg is not None)


# -- prompts --------------------------------------------------------------------------------------
def test_weak_prompt_is_encoded_once_outside_sampling_and_used_by_the_weak_call(webui):
    result = webui.generate({**CFG1, "weak_cfg": None, "weak_prompt": "a dog"}, n_iter=2, batch_size=2)
    texts = [text for text, _ in webui.encoded]
    assert texts.count("a dog") == 1  # two batches, one encoding
    assert not any(during for _, during in webui.encoded)
    assert_only_weak_calls_see_the_weak_prompt(result)


def test_weak_prompt_in_the_hires_pass_is_encoded_for_its_size(webui):
    webui.generate({**CFG1, "weak_cfg": None, "weak_prompt": "a dog", "hires": True}, enable_hr=True,
                   hr_scale=1.5, hr_cfg=7.0, steps=4)
    assert [text for text, _ in webui.encoded].count("a dog") == 2  # 32 px and 48 px: two cache entries


def test_prompt_editing_timing_is_not_shifted_by_reflections(webui):
    prompt = "a [red:blue:3] cat"
    plain = webui.generate(None, prompt=prompt)
    w2sd = webui.generate({**CFG1, "reflect_steps": 1.0}, prompt=prompt)
    own_w2sd = [(c.step, c.text_cond) for c in w2sd.calls if c.role is None]
    assert [s for s, _ in own_w2sd] == [c.step for c in plain.calls] == list(range(6))
    assert all(torch.equal(a, c.text_cond) for (_, a), c in zip(own_w2sd, plain.calls))
    assert [c.step for c in w2sd.calls if c.role == "weak"] == list(range(5))


# -- SDXL -----------------------------------------------------------------------------------------
SDXL_SIZES = dict(width=32, height=48, enable_hr=True, hr_scale=1.5, hr_cfg=5.0, steps=4)


def load_sdxl(webui, tmp_path):
    from harness import SDXL_ADM, write_checkpoint

    webui.reset(write_checkpoint(tmp_path / "xl.safetensors", seed=2, adm=SDXL_ADM))
    assert webui.model.is_sdxl


def test_sdxl_dict_conds(webui, tmp_path):
    load_sdxl(webui, tmp_path)
    result = webui.generate({**CFG1, "weak_prompt": "a dog", "strong_cfg": 5.0})
    assert "W2SD reflected: 3/6" in result.infotext and "W2SD warning" not in result.infotext
    assert set(result.calls[0].text_cond) == {"crossattn", "vector"}


def test_sdxl_weak_prompts_get_the_webuis_own_conds_with_size_and_crop(webui, tmp_path):
    """backend/diffusion_engine/sdxl.py get_learned_conditioning: size from the pass's SdConditioning,
    crop from opts."""
    load_sdxl(webui, tmp_path)
    check_sdxl_weak_conds_follow_size_and_crop(webui, SDXL_SIZES)


def test_sdxl_at_cfg_1_the_negative_prompt_w2sd_encodes_is_forges_own(webui, tmp_path):
    """At CFG 1 Forge encodes no uncond; W2SD encodes the generation's negative prompt for a strong
    CFG as Forge would at that CFG: an empty one gives zero text embeddings with the size vector."""
    load_sdxl(webui, tmp_path)
    result = webui.generate({**CFG1, "strong_cfg": 5.0}, negative_prompt="", width=32, height=48, cfg_scale=1.0)
    reference = webui.generate(None, negative_prompt="", width=32, height=48, cfg_scale=5.0)
    strong = [c.text_uncond for c in result.calls if c.role == "strong"]
    own = reference.calls[0].text_uncond
    assert strong and all(same_conds(u, own) for u in strong)
    assert not own["crossattn"].any() and own["vector"][:, 8:].any()


def test_sdxl_weak_checkpoint(webui, tmp_path):
    from harness import SDXL_ADM

    load_sdxl(webui, tmp_path)
    webui.add_checkpoint("weak.safetensors", seed=5, adm=SDXL_ADM)
    plain = webui.generate(None)
    result = webui.generate({"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5})
    assert result.weak_unet_calls == [2, 2, 2] and "W2SD warning" not in result.infotext
    assert not torch.equal(result.latents, plain.latents)
    assert torch.equal(webui.generate(None).latents, plain.latents)


# -- the refiner ----------------------------------------------------------------------------------
REFINER = dict(refiner_checkpoint="refiner.safetensors", refiner_switch_at=0.5)


def switch_call(result):
    """The index of the sampler's own call that ran first on the refiner (all later ones did too)."""
    files = [c.checkpoint for c in result.calls if c.role is None]
    switch = files.index("refiner.safetensors")
    assert set(files[:switch]) == {"strong.safetensors"} and set(files[switch:]) == {"refiner.safetensors"}
    return switch


@pytest.mark.parametrize("sampler, switch_at, base_steps", [("Euler", 0.5, 3), ("DPM++ 2M", 0.5, 3), ("Heun", 0.5, 3),
                                                            ("DPM fast", 0.5, 2), ("DPM++ 2M", 0.35, 3)])
def test_refiner_reflects_only_the_base_models_steps(webui, sampler, switch_at, base_steps):
    """Forge switches by the count of the sampler's own calls (W2SD's never count), not by the noise
    level as A1111 does (on DPM++ 2M's Karras schedule at 0.35 that would be one step earlier);
    DPM fast's calls per step vary, W2SD stops reflecting by asking before each step."""
    webui.add_refiner()
    options = dict(REFINER, refiner_switch_at=switch_at, sampler_name=sampler)
    plain = webui.generate(None, **options)
    result = webui.generate({**CFG1, "reflect_steps": 1.0}, **options)
    assert switch_call(result) == switch_call(plain) > 0
    extra = [c for c in result.calls if c.role is not None]
    assert extra and {c.checkpoint for c in extra} == {"strong.safetensors"}
    assert len({c.step for c in extra}) == base_steps and f"W2SD reflected: {base_steps}/" in result.infotext
    assert "W2SD before refiner" in result.infotext
    after = webui.generate(None, **options)
    assert torch.equal(after.latents, plain.latents)


EQUAL = "the weak model equals the strong one"
REFINER_CONTROLS = [{"weak_cfg": 7.0}, {"weak_prompt": "a red cat"}, {"weak_checkpoint": "strong.safetensors"},
                    {"weak_cfg": 7.0, "weak_prompt": "a red cat", "weak_negative_prompt": "blurry"}]


@pytest.mark.parametrize("sampler", ["Euler", "DPM++ 2M", "DPM++ 2M SDE", "Heun"])
@pytest.mark.parametrize("same", REFINER_CONTROLS)
def test_refiner_no_difference_control_is_the_plain_image(webui, sampler, same):
    """The no-difference control with the refiner switching mid-pass. On real Forge (21:34,
    /work/checks/sdxl results forge-fp32-sd15, row refiner-DPM++ 2M) this control reflected an
    identity (gap 0) and differed from plain on DPM++ 2M only: each reflected step starts a new
    sampler run (schedule.segments), which restarts a multistep sampler's history (Euler and Heun
    keep none), here at step 1 of the base model's part. Now an identity never reflects: no W2SD
    call, the image and the switch bit for bit, the warning."""
    webui.add_refiner()
    options = dict(REFINER, sampler_name=sampler)
    plain = webui.generate(None, **options)
    control = webui.generate({"enabled": True, "reflect_steps": 1.0, **same}, **options)
    assert torch.equal(control.latents, plain.latents)
    assert set(control.roles()) == {None}
    assert switch_call(control) == switch_call(plain) > 0
    assert EQUAL in control.infotext and "W2SD reflected" not in control.infotext
    assert torch.equal(webui.generate(None, **options).latents, plain.latents)


def test_refiner_with_every_kind_keeps_lora_and_weak_unet_on_the_base(webui):
    webui.add_lora()
    webui.add_checkpoint("weak.safetensors", seed=5)
    webui.add_refiner()
    w2sd = {**LORA, "weak_checkpoint": "weak.safetensors", "weak_cfg": 1.0, "weak_prompt": "a dog",
            "reflect_steps": 1.0}
    plain = webui.generate(None, prompt=LORA_PROMPT, **REFINER)
    result = webui.generate(w2sd, prompt=LORA_PROMPT, **REFINER)
    assert switch_call(result) == switch_call(plain) == 3
    weak = [c for c in result.calls if c.role == "weak"]
    assert len(weak) == 3 and all(c.unet == "weak" and c.checkpoint == "strong.safetensors" for c in weak)
    assert "W2SD warning" not in result.infotext
    assert torch.equal(webui.generate(None, prompt=LORA_PROMPT, **REFINER).latents, plain.latents)


def test_refiner_in_the_hires_pass(webui):
    webui.add_refiner()
    options = dict(enable_hr=True, hr_scale=1.5, hr_cfg=5.0, steps=4, hr_second_pass_steps=6, denoising_strength=0.6,
                   **REFINER)
    result = webui.generate({**CFG1, "reflect_steps": 1.0, "hires": True, "hires_reflect_steps": 1.0}, **options)
    assert "W2SD reflected: 3/4" in result.infotext  # the first pass has no switch ('second pass')
    assert "W2SD hires before refiner" in result.infotext
    assert {c.checkpoint for c in result.calls if c.role} == {"strong.safetensors"}


# -- LoRA -----------------------------------------------------------------------------------------
def test_lora_difference_switches_multipliers_per_call_and_restores_exactly(webui):
    from backend.patcher.lora import LoraLoader

    webui.add_lora()
    before = webui.generate(None, prompt=LORA_PROMPT)
    merged = weights(webui.strong_unet)
    kmodel = webui.model.forge_objects.unet.model
    assert isinstance(kmodel.lora_loader, LoraLoader)
    refreshes = kmodel.lora_loader.refresh_count
    result = webui.generate(LORA, prompt=LORA_PROMPT)
    assert {(c.role, c.lora) for c in result.calls} == {(None, None), ("strong", 1.5), ("weak", -1.5)}
    assert kmodel.lora_loader.refresh_count == refreshes  # Forge never re-merged a weight
    assert same_weights(weights(webui.strong_unet), merged)  # the merged weights were never touched
    assert lora_attachments(kmodel) == []
    after = webui.generate(None, prompt=LORA_PROMPT)
    assert torch.equal(after.latents, before.latents)
    assert not torch.equal(result.latents, before.latents)


def test_a_switched_call_equals_the_lora_merged_at_that_multiplier(webui):
    """The delta patch on merged weights gives what Forge would compute with the LoRA at 1.5."""
    from lib_w2sd.webui.adapters import forge_lora

    webui.add_lora()
    webui.generate(None, prompt=LORA_PROMPT)
    unet = webui.model.forge_objects.unet
    x, t = torch.randn(2, 4, 4, 4), torch.tensor([500.0, 20.0])
    context = torch.randn(2, 6, 8)
    switch = forge_lora.LoraSwitch(unet, forge_lora.prompt_lora_patches(webui.model, unet))
    assert len(switch) == 4
    with torch.no_grad(), switch.applied(1.5):
        switched = unet.model.diffusion_model(x, t, context=context)
    webui.generate(None, prompt="a red cat <lora:style:1.5>")
    with torch.no_grad():
        merged = webui.model.forge_objects.unet.model.diffusion_model(x, t, context=context)
    assert torch.allclose(switched, merged, atol=1e-5)


def test_lora_switch_costs_one_low_rank_merge_per_lora_layer_and_call(webui):
    from backend import operations

    webui.add_lora()
    webui.generate(None, prompt=LORA_PROMPT)
    operations.merge_calls = 0
    result = webui.generate(LORA, prompt=LORA_PROMPT)
    switched_calls = sum(1 for c in result.calls if c.lora is not None)
    assert switched_calls == 6  # 3 reflected steps x (strong + weak); 'start' needs no gap probe
    assert operations.merge_calls == 4 * switched_calls


def test_online_lora_patches_are_switched_in_place_and_put_back(webui):
    """--online-lora keeps LoRAs as forge_online_loras; W2SD swaps the list for the call only."""
    from backend.utils import load_torch_file
    from networks import load_lora_for_models

    from lib_w2sd.webui.adapters import forge_lora

    path = webui.add_lora()
    original = webui.model.forge_objects.unet
    unet, _ = load_lora_for_models(original, None, load_torch_file(path), 0.8, 0.8, filename=path, online_mode=True)
    unet.refresh_loras()
    layer = unet.model.diffusion_model.context
    attached = layer.forge_online_loras
    x, t, context = torch.randn(1, 4, 4, 4), torch.tensor([300.0]), torch.randn(1, 6, 8)
    switch = forge_lora.LoraSwitch(unet, {k: v for k, v in unet.lora_patches.items() if k[3]})
    with torch.no_grad():
        at_08 = unet.model.diffusion_model(x, t, context=context)
        with switch.applied(0.8):
            same = unet.model.diffusion_model(x, t, context=context)
            assert layer.forge_online_loras is not attached
        with switch.applied(-1.5):
            other = unet.model.diffusion_model(x, t, context=context)
    assert layer.forge_online_loras is attached
    assert torch.allclose(same, at_08, atol=1e-6) and not torch.allclose(other, at_08, atol=1e-3)
    original.lora_loader.refresh({})  # back to the bare UNet for the next test


def test_merged_dora_is_refused_with_a_clear_warning(webui):
    webui.add_lora("dora", dora=True)
    plain = webui.generate(None, prompt="a red cat <lora:dora:0.8>")
    result = webui.generate(LORA, prompt="a red cat <lora:dora:0.8>")
    assert "DoRA" in result.infotext and "generated without W2SD" in result.infotext
    assert torch.equal(result.latents, plain.latents)


@pytest.mark.parametrize("hires", [False, True], ids=["txt2img", "hires"])
def test_lora_at_the_prompts_own_multiplier_is_no_difference(webui, hires):
    """The no-difference control of the LoRA kind, also in the hires pass (whose hook Forge runs
    twice, with forge_objects reset between: processing.py:1510, 1522)."""
    webui.add_lora()
    options = dict(enable_hr=True, hr_scale=1.5, hr_cfg=7.0, steps=4) if hires else {}
    plain = webui.generate(None, prompt=LORA_PROMPT, **options)
    control = {"enabled": True, "weak_lora_multiplier": 0.8, "reflect_steps": 0.5, "hires": hires}
    same = webui.generate(control, prompt=LORA_PROMPT, **options)
    assert torch.equal(same.latents, plain.latents) and set(same.roles()) == {None}
    passes = ["txt2img", "hires"] if hires else ["txt2img"]
    assert [f"in the {kind} pass the weak model equals the strong one" in same.infotext for kind in passes] == \
        [True] * len(passes)


def test_lora_difference_without_a_lora_in_the_prompt_warns(webui):
    result = webui.generate({**LORA, "weak_cfg": 1.0})
    assert "no LoRA in the txt2img prompt" in result.processed.comments
    assert {c.role for c in result.calls} == {None, "weak", "strong"}


# -- another checkpoint ---------------------------------------------------------------------------
def test_weak_checkpoint_runs_the_weak_calls_only_with_one_more_unet_of_memory(webui):
    from backend import memory_management

    from lib_w2sd.webui.adapters import forge_unet

    webui.add_checkpoint("weak.safetensors", seed=5)
    plain = webui.generate(None)
    result = webui.generate({"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5})
    assert all((c.role == "weak") == (c.unet == "weak") for c in result.calls)
    assert result.weak_unet_calls == [2, 2, 2]
    assert not torch.equal(result.latents, plain.latents)
    entry = forge_unet.cache.entry
    strong_bytes = memory_management.module_size(webui.strong_unet)
    assert entry.bytes == memory_management.module_size(entry.patcher.model) == strong_bytes
    assert set(k.split(".")[0] for k, _ in entry.patcher.model.named_parameters()) == {"diffusion_model"}
    assert webui.model.forge_objects.unet.model.diffusion_model is webui.strong_unet


def test_weak_checkpoint_is_cached_by_file_and_hash(webui, monkeypatch):
    from backend import loader

    reads = []
    split = loader.split_state_dict
    monkeypatch.setattr(loader, "split_state_dict", lambda *a, **k: reads.append(a[0]) or split(*a, **k))
    webui.add_checkpoint("weak.safetensors", seed=5)
    w2sd = {"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5, "hires": True}
    first = webui.generate(w2sd, enable_hr=True, hr_scale=1.5, hr_cfg=7.0, steps=4)
    second = webui.generate(w2sd, enable_hr=True, hr_scale=1.5, hr_cfg=7.0, steps=4)
    assert len(reads) == 1
    assert torch.equal(first.latents, second.latents)
    webui.add_checkpoint("weak.safetensors", seed=6)  # the file changed: read again
    webui.generate(w2sd, steps=4)
    assert len(reads) == 2


@pytest.mark.parametrize("policy, loaded, cached", [("gpu", True, True), ("offload", False, True),
                                                    ("unload", False, False)])
def test_weak_checkpoint_memory_policy(webui, policy, loaded, cached):
    from backend import memory_management

    from lib_w2sd.webui.adapters import forge_unet

    webui.settings(w2sd_checkpoint_memory=policy)
    webui.add_checkpoint("weak.safetensors", seed=5)
    webui.generate({"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5})
    weak_models = [m for m in memory_management.current_loaded_models
                   if m.model.model is not webui.model.forge_objects.unet.model
                   and m.model.model is not webui.model.forge_objects.clip.cond_stage_model]
    assert bool(weak_models) is loaded
    assert (forge_unet.cache.entry is not None) is cached
    assert any(model is webui.model.forge_objects.unet for model in
               [m.model for m in memory_management.current_loaded_models])  # the WebUI's own UNet stays


@pytest.mark.parametrize("filename, kwargs, message", [
    ("xl.safetensors", dict(adm=16), "does not fit the loaded model: it is SDXL"),
    ("inpaint.safetensors", dict(in_channels=9), "in_channels 9"),
    ("vpred.safetensors", dict(v_pred=True), "V_PREDICTION"),
    ("old.ckpt", {}, "not a .safetensors file"),
])
def test_unusable_weak_checkpoints_fall_back_with_a_clear_warning(webui, filename, kwargs, message):
    webui.add_checkpoint(filename, seed=5, **kwargs)
    plain = webui.generate(None)
    result = webui.generate({"enabled": True, "weak_checkpoint": filename, "reflect_steps": 0.5})
    assert message in result.infotext and "generated without W2SD" in result.infotext
    assert torch.equal(result.latents, plain.latents)


def test_unusable_weak_checkpoint_fails_the_generation_under_fail(webui):
    from lib_w2sd.webui.common import W2SDFailure

    webui.settings(w2sd_on_error="fail")
    webui.add_checkpoint("xl.safetensors", seed=5, adm=16)
    with pytest.raises(W2SDFailure, match="does not fit"):
        webui.generate({"enabled": True, "weak_checkpoint": "xl.safetensors", "reflect_steps": 0.5})


def test_checkpoint_and_lora_combined_switch_lora_only_on_the_strong_unet(webui):
    webui.add_lora()
    webui.add_checkpoint("weak.safetensors", seed=5)
    result = webui.generate({**LORA, "weak_checkpoint": "weak.safetensors", "weak_cfg": 1.0}, prompt=LORA_PROMPT)
    weak = [c for c in result.calls if c.role == "weak"]
    assert weak and all(c.unet == "weak" for c in weak)
    assert result.weak_unet_calls == [1, 1, 1]  # weak CFG 1: the conditional batch only
    assert lora_attachments(webui.model.forge_objects.unet.model) == []
    assert lora_attachments(webui.weak_unet()) == []


# -- img2img and inpainting -----------------------------------------------------------------------
def test_inpainting_blends_every_call_and_leaves_the_global_rng_as_plain_sampling_does(webui):
    blends = record_mask_blends(webui)
    mask = torch.zeros(32, 32)
    mask[:, 16:] = 1
    torch.manual_seed(0)
    plain = webui.generate(None, img2img=True, mask=mask, denoising_strength=0.6)
    after_plain = torch.get_rng_state()
    blends.clear()
    torch.manual_seed(0)
    result = webui.generate(CFG1, img2img=True, mask=mask, denoising_strength=0.6)
    assert torch.equal(torch.get_rng_state(), after_plain)
    assert not hasattr(result.p.sampler.func, "w2sd_original")  # img2img keeps its sampler: unwrapped
    assert blends == result.roles() and {"weak", "strong", None} == set(blends)
    assert torch.equal(result.latents[:, :, :, :2], plain.latents[:, :, :, :2])  # the kept half stays
    assert "W2SD reflected: 2/4" in result.infotext  # 0.6 of 6 steps sampled, half reflected


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "Heun", "DPM++ 2M", "DPM++ 2M SDE"])
def test_every_kind_on_the_usual_samplers_txt2img_img2img_and_hires(webui, sampler):
    webui.add_lora()
    webui.add_checkpoint("weak.safetensors", seed=5)
    w2sd = {"enabled": True, "weak_cfg": 1.0, "weak_prompt": "a dog", "weak_lora_multiplier": -1.0,
            "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5, "hires": True}
    for kwargs in (dict(), dict(img2img=True), dict(enable_hr=True, hr_scale=1.5, hr_cfg=5.0)):
        result = webui.generate(w2sd, sampler_name=sampler, prompt=LORA_PROMPT, steps=4, **kwargs)
        assert "W2SD reflected" in result.infotext and "W2SD warning" not in result.infotext, result.infotext


def test_dpm_adaptive_runs_plain_with_a_warning(webui):
    plain = webui.generate(None, sampler_name="DPM adaptive", steps=3)
    result = webui.generate(CFG1, sampler_name="DPM adaptive", steps=3)
    assert "chooses its steps as it goes" in result.infotext
    assert torch.equal(result.latents, plain.latents)


# -- faults ---------------------------------------------------------------------------------------
def test_an_error_in_a_weak_call_falls_back_and_restores_everything(webui, monkeypatch):
    from lib_w2sd.webui.adapters import forge_lora

    webui.add_lora()
    before = webui.generate(None, prompt=LORA_PROMPT)
    merged = weights(webui.strong_unet)
    applied = forge_lora.LoraSwitch.applied

    def failing(self, multiplier):
        if multiplier < 0:
            raise RuntimeError("boom in the weak call")
        return applied(self, multiplier)

    monkeypatch.setattr(forge_lora.LoraSwitch, "applied", failing)
    result = webui.generate({**LORA, "hires": True}, prompt=LORA_PROMPT, enable_hr=True, hr_scale=1.5, hr_cfg=4.0)
    assert "boom in the weak call" in result.infotext and "generated without W2SD" in result.infotext
    assert result.p.hr_cfg == 4.0
    assert getattr(result.p, "w2sd_forge_lora", None) is None
    assert lora_attachments(webui.model.forge_objects.unet.model) == []
    assert same_weights(weights(webui.strong_unet), merged)
    monkeypatch.undo()
    after = webui.generate(None, prompt=LORA_PROMPT)
    assert torch.equal(after.latents, before.latents)


@pytest.mark.parametrize("flag", ["interrupted", "skipped"])
def test_interrupt_or_skip_in_a_reflected_step_stops_cleanly(webui, flag):
    from modules import shared

    webui.add_lora()
    webui.add_checkpoint("weak.safetensors", seed=5)
    before = webui.generate(None, prompt=LORA_PROMPT)

    def stop(call, p):
        if call.role == "weak" and call.step == 1:
            setattr(shared.state, flag, True)

    webui.observers.append(stop)
    w2sd = {**LORA, "weak_checkpoint": "weak.safetensors", "weak_cfg": 1.0}
    result = webui.generate(w2sd, prompt=LORA_PROMPT)
    assert result.roles()[-1] == "weak" and len(result.calls) < 12  # nothing ran after the interrupt
    assert webui.model.forge_objects.unet.model.diffusion_model is webui.strong_unet
    assert lora_attachments(webui.model.forge_objects.unet.model) == []
    assert result.p.sampler.last_latent is not None
    webui.observers.clear()
    after = webui.generate(None, prompt=LORA_PROMPT)
    assert torch.equal(after.latents, before.latents)


def test_a_plain_generation_after_a_failed_one_is_bit_identical(webui):
    from lib_w2sd.webui.common import W2SDFailure

    webui.add_checkpoint("xl.safetensors", seed=5, adm=16)
    before = webui.generate(None)
    webui.settings(w2sd_on_error="fail")
    with pytest.raises(W2SDFailure):
        webui.generate({"enabled": True, "weak_checkpoint": "xl.safetensors"})
    after = webui.generate(None)
    assert torch.equal(after.latents, before.latents)


# -- one UNet batch for strong and weak ------------------------------------------------------------
# the same tests on both WebUIs' stand-ins (webui_patterns.joint_tests)
globals().update(joint_tests(hires=dict(enable_hr=True, hr_scale=1.5, hr_cfg=5.0)))
