"""The real scripts/w2sd.py driven through the A1111 v1.10 stand-in (tests/stubs): every weak
kind and pass, with the denoiser calls counted (a TinySD UNet on the CPU, real k-diffusion
samplers)."""

import pytest
import torch
from webui_patterns import (
    assert_only_weak_calls_see_the_weak_prompt,
    check_sdxl_weak_conds_follow_size_and_crop,
    joint_tests,
    record_mask_blends,
    reflected_pattern,
)

STAND_IN = "stubs"
CFG1 = {"enabled": True, "weak_cfg": 1.0, "reflect_steps": 0.5}


# -- the script itself --------------------------------------------------------------------------
def test_script_is_always_on_and_named_w2sd(webui):
    from modules import scripts

    assert webui.script.title() == "W2SD"
    assert webui.script.show(False) is scripts.AlwaysVisible
    assert webui.script.show(True) is scripts.AlwaysVisible


def test_disabled_changes_nothing(webui):
    plain = webui.generate(None)
    off = webui.generate({"enabled": False, "weak_cfg": 1.0})
    assert torch.equal(plain.latents, off.latents)
    assert off.roles() == [None] * 6
    assert "W2SD" not in off.infotext


# -- weak kinds ---------------------------------------------------------------------------------
def test_weak_cfg_1_comes_from_the_strong_calls_batch(webui):
    """Z-Sampling: the weak estimate u + 1 (c - u) needs no UNet row the strong call lacks: a
    reflected step is one UNet call of 2 rows per image."""
    result = webui.generate(CFG1, batch_size=2)
    assert result.batches() == reflected_pattern(6, 3, strong_rows=4, weak_rows=None, normal_rows=4)
    assert result.roles()[:3] == ["strong", "weak", None]  # both calls still run the CFG denoiser
    assert "W2SD reflected: 3/6" in result.infotext
    assert "Skip Early CFG" not in result.infotext  # the skip W2SD borrows leaves no trace


def test_weak_cfg_1_in_a_call_of_its_own_runs_the_conditional_batch_only(webui, monkeypatch):
    """Where the weak call cannot share the strong call's batch (here: joint calls switched off),
    at scale 1 it skips the uncond rows."""
    import lib_w2sd.webui.common as common

    monkeypatch.setattr(common, "make_joint_denoiser", lambda *args, **kw: None)
    result = webui.generate(CFG1, batch_size=2)
    assert result.batches() == reflected_pattern(6, 3, strong_rows=4, weak_rows=2, normal_rows=4)
    assert "Skip Early CFG" not in result.infotext


def test_weak_cfg_other_than_1_changes_the_image(webui):
    plain = webui.generate(None)
    weak3 = webui.generate({**CFG1, "weak_cfg": 3.0})
    weak1 = webui.generate(CFG1)
    assert weak3.batches() == reflected_pattern(6, 3, 2, None, 2)
    assert not torch.equal(weak3.latents, plain.latents)
    assert not torch.equal(weak3.latents, weak1.latents)


def test_strong_cfg_is_used_for_the_reflections_strong_call(webui, monkeypatch):
    from modules import sd_samplers_cfg_denoiser as cfg_denoiser

    scales = []
    forward = cfg_denoiser.CFGDenoiser.forward

    def spy(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond):
        scales.append((getattr(self.p, "w2sd_extra_call", None), cond_scale))
        return forward(self, x, sigma, uncond, cond, cond_scale, s_min_uncond, image_cond)

    monkeypatch.setattr(cfg_denoiser.CFGDenoiser, "forward", spy)
    webui.generate({**CFG1, "weak_cfg": 2.0, "strong_cfg": 9.0, "reflect_steps": 1.0}, steps=3)
    assert scales == [("strong", 9.0), ("weak", 2.0), (None, 7.0)] * 2 + [(None, 7.0)]


def test_weak_prompt_is_encoded_once_per_generation_and_used_by_the_weak_call(webui):
    webui.model.cond_stage_model.encoded.clear()
    result = webui.generate({**CFG1, "weak_cfg": None, "weak_prompt": "a dog"}, n_iter=2, batch_size=2)
    encoded = webui.model.cond_stage_model.encoded
    assert encoded.count("a dog") == 1  # two batches, one encoding
    assert encoded.count("a red cat") == 1
    assert_only_weak_calls_see_the_weak_prompt(result)


def test_weak_negative_prompt_alone_keeps_the_prompt(webui):
    result = webui.generate({**CFG1, "weak_cfg": None, "weak_negative_prompt": "sharp"})
    weak = [c.text_cond for c in result.calls if c.role == "weak"]
    own = [c.text_cond for c in result.calls if c.role is None]
    assert torch.equal(weak[0], own[0])  # cond rows: the generation's prompt
    assert "sharp" in webui.model.cond_stage_model.encoded


def test_prompt_editing_timing_is_not_shifted_by_reflections(webui):
    prompt = "a [red:blue:3] cat"
    plain = webui.generate(None, prompt=prompt)
    w2sd = webui.generate({**CFG1, "reflect_steps": 1.0}, prompt=prompt)
    own_plain = [(c.step, c.text_cond) for c in plain.calls]
    own_w2sd = [(c.step, c.text_cond) for c in w2sd.calls if c.role is None]
    assert [s for s, _ in own_w2sd] == [s for s, _ in own_plain] == list(range(6))
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(own_w2sd, own_plain))
    # extra calls see the schedule of the step they belong to
    assert [c.step for c in w2sd.calls if c.role == "weak"] == list(range(5))


def test_lora_difference_switches_multipliers_and_restores_everything(webui):
    import networks
    from modules import shared

    webui.add_lora()
    prompt = "a red cat <lora:style:0.8>"
    before = webui.generate(None, prompt=prompt)
    result = webui.generate({"enabled": True, "weak_lora_multiplier": -1.5, "strong_lora_multiplier": 1.5,
                             "reflect_steps": 0.5}, prompt=prompt)
    seen = {(c.role, c.lora) for c in result.calls}
    assert seen == {(None, (0.8,)), ("strong", (1.5,)), ("weak", (-1.5,))}
    assert networks.loaded_networks[0].unet_multiplier == 0.8
    assert "lora_functional" not in shared.opts.data
    after = webui.generate(None, prompt=prompt)
    assert torch.equal(after.latents, before.latents)  # merged weights came back bit for bit
    assert not torch.equal(result.latents, before.latents)


def test_lora_at_the_prompts_own_multiplier_is_no_difference(webui):
    """The no-difference control of the LoRA kind: no functional mode, the image bit for bit."""
    from modules import shared

    webui.add_lora()
    prompt = "a red cat <lora:style:0.8>"
    plain = webui.generate(None, prompt=prompt)
    seen = []
    webui.observers.append(lambda call, p: seen.append(shared.opts.data.get("lora_functional")))
    same = webui.generate({"enabled": True, "weak_lora_multiplier": 0.8, "reflect_steps": 0.5}, prompt=prompt)
    assert torch.equal(same.latents, plain.latents) and EQUAL in same.infotext
    assert not any(seen)


def test_lora_difference_without_a_lora_in_the_prompt_warns(webui):
    result = webui.generate({"enabled": True, "weak_cfg": 1.0, "weak_lora_multiplier": -1.0})
    assert "no LoRA in the txt2img prompt" in result.processed.comments
    assert "W2SD warning" in result.infotext
    assert {c.role for c in result.calls} == {None, "weak", "strong"}  # the CFG difference still runs


def test_combined_kinds(webui):
    webui.add_lora()
    result = webui.generate({"enabled": True, "weak_cfg": 1.0, "strong_cfg": 5.5, "weak_prompt": "a cat",
                             "weak_lora_multiplier": -1.5, "strong_lora_multiplier": 1.5, "reflect_steps": 1.0},
                            prompt="a red cat <lora:style:0.8>")
    weak_rows = [rows for role, rows in result.batches() if role == "weak"]
    assert weak_rows == [1] * 5
    assert {c.lora for c in result.calls if c.role == "weak"} == {(-1.5,)}


# -- SDXL -----------------------------------------------------------------------------------------
@pytest.fixture
def sdxl(webui):
    """An SDXL model loaded instead of the box's SD1.5 one (dict conds, size-conditioned vector)."""
    import tiny_sd
    from modules import shared

    shared.sd_model = model = tiny_sd.TinySD(sdxl=True)
    yield model
    shared.sd_model = webui.model


SDXL_SIZES = dict(width=32, height=48, enable_hr=True, hr_scale=1.5, hr_second_pass_steps=4, denoising_strength=0.5)


def test_sdxl_dict_conds_in_one_joint_batch(webui, sdxl):
    plain = webui.generate(None)
    sdxl.unet.calls.clear()
    result = webui.generate({**CFG1, "weak_prompt": "a dog"})
    assert not torch.equal(plain.latents, result.latents)
    assert set(result.calls[0].text_cond) == {"crossattn", "vector"}
    # per reflected step one joint call: cond, weak cond and uncond rows; then the sampler's own
    assert sdxl.unet.calls == [3, 2] * 3 + [2] * 3


def test_sdxl_weak_prompts_get_the_webuis_own_conds_with_size_and_crop(webui, sdxl):
    """sd_models_xl.py get_learned_conditioning: size from the pass's SdConditioning, crop from opts."""
    check_sdxl_weak_conds_follow_size_and_crop(webui, SDXL_SIZES)


def test_sdxl_weak_checkpoint(webui, sdxl, tmp_path):
    import harness
    import tiny_sd

    from lib_w2sd.webui.adapters import checkpoint

    harness.write_checkpoint(tmp_path / "weak.safetensors", tiny_sd.TinySD(seed=5, sdxl=True).unet)
    webui.register_checkpoints(tmp_path)
    plain = webui.generate(None)
    sdxl.unet.calls.clear()  # the weak copy is made from the loaded UNet, its call log included
    result = webui.generate({"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5})
    assert checkpoint.cache.entry.module.calls == [2, 2, 2] and "W2SD warning" not in result.infotext
    assert not torch.equal(plain.latents, result.latents)
    assert torch.equal(webui.generate(None).latents, plain.latents)


def test_sdxl_refiner_reflects_the_base_part_with_the_bases_weak_conds(webui, sdxl, tmp_path):
    refiner = webui.add_refiner(tmp_path, model=sdxl)
    sdxl.cond_stage_model.encoded.clear()
    plain = webui.generate(None, **REFINER)
    result = webui.generate({**CFG1, "weak_prompt": "a dog", "reflect_steps": 1.0}, **REFINER)
    assert switch_call(sdxl, result, refiner) == switch_call(sdxl, plain, refiner) == 3
    assert {c.model for c in result.calls if c.role} == {sdxl}
    assert "a dog" in sdxl.cond_stage_model.encoded and "a dog" not in refiner.cond_stage_model.encoded
    assert "W2SD reflected: 3/6" in result.infotext


# -- passes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("hires", [True, False])
def test_hires_pass_has_its_own_switch_and_step_count(webui, hires):
    w2sd = {**CFG1, "hires": hires, "hires_reflect_steps": 0.25}
    result = webui.generate(w2sd, enable_hr=True, hr_second_pass_steps=8, denoising_strength=0.5)
    first = reflected_pattern(6, 3, 2, None, 2)
    second = reflected_pattern(8, 2, 2, None, 2) if hires else [(None, 2)] * 8
    assert result.batches() == first + second
    assert ("W2SD hires reflected: 2/8" in result.infotext) == hires


def test_img2img_with_batch_count_rewraps_its_one_sampler(webui):
    result = webui.generate(CFG1, img2img=True, denoising_strength=0.5, steps=8, n_iter=2)
    one_batch = reflected_pattern(5, 2, 2, None, 2)  # strength 0.5 of 8 steps: A1111 runs 5
    assert result.batches() == one_batch + one_batch
    assert not hasattr(result.p.sampler.func, "w2sd_original")


def test_inpainting_blend_applies_to_every_call(webui):
    blends = record_mask_blends(webui)
    mask = torch.zeros(32, 32)
    mask[:, :16] = 1
    result = webui.generate(CFG1, img2img=True, mask=mask, denoising_strength=0.75, steps=8)
    assert len(blends) == len(result.calls) > 8
    kept = result.latents[:, :, :, 2:]  # the unmasked half keeps the init latent
    assert torch.allclose(kept, result.p.init_latent[:, :, :, 2:])


def test_inpainting_model_keeps_both_batches_at_weak_cfg_1(webui):
    import tiny_sd
    from modules import shared

    shared.sd_model = tiny_sd.TinySD(inpainting=True)
    try:
        shared.sd_model.unet.calls.clear()
        result = webui.generate(CFG1, img2img=True, denoising_strength=1.0, steps=4)
        rows = [r for role, r in zip(result.roles(), shared.sd_model.unet.calls) if role == "weak"]
        assert rows == [2, 2]  # A1111 1.10's uncond skip fails on image-conditioned models
    finally:
        shared.sd_model = webui.model


SAMPLERS = ["Euler", "Euler a", "Heun", "DPM++ 2M", "DPM++ 2M SDE", "DPM++ SDE", "DPM fast", "LMS"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samplers_reflect_and_change_the_image(webui, sampler):
    plain = webui.generate(None, sampler_name=sampler)
    result = webui.generate(CFG1, sampler_name=sampler)
    assert "W2SD reflected: 3/6" in result.infotext
    assert "W2SD warning" not in result.infotext
    assert not torch.equal(plain.latents, result.latents)
    assert torch.isfinite(result.latents).all()


EQUAL = "the weak model equals the strong one"
NO_DIFFERENCES = [{"weak_cfg": 7.0}, {"weak_cfg": 7.0, "strong_cfg": 7.0}, {"weak_prompt": "a red cat <lora:x:1>"},
                  {"weak_negative_prompt": "blurry"}, {"weak_checkpoint": "base.safetensors"},
                  {"weak_cfg": 7.0, "weak_prompt": "a red cat", "weak_checkpoint": "base.safetensors"}]


@pytest.mark.parametrize("sampler", ["Euler", "DPM++ 2M"])
@pytest.mark.parametrize("same", NO_DIFFERENCES)
def test_a_weak_model_equal_to_the_strong_one_reflects_nothing(webui, tmp_path, sampler, same):
    """The no-difference controls: the generation's own CFG, prompts or checkpoint as the weak
    model: no reflection (so also the multistep samplers' history is untouched), a warning, the
    image bit for bit; nothing is encoded or loaded for it."""
    from lib_w2sd.webui.adapters import checkpoint

    webui.add_refiner(tmp_path)  # registers base.safetensors, the loaded model's checkpoint
    plain = webui.generate(None, sampler_name=sampler)
    webui.model.cond_stage_model.encoded.clear()
    result = webui.generate({"enabled": True, **same}, sampler_name=sampler)
    assert torch.equal(result.latents, plain.latents) and set(result.roles()) == {None}
    assert EQUAL in result.processed.comments and EQUAL in result.infotext
    assert webui.model.cond_stage_model.encoded == [] and checkpoint.cache.entry is None


def test_weak_and_strong_that_barely_differ_warn_by_the_gap(webui):
    plain = webui.generate(None)
    close = webui.generate({"enabled": True, "weak_cfg": 7.0001, "reflect_steps": 0.5})
    differs = webui.generate(CFG1)
    assert not torch.equal(differs.latents, plain.latents)
    assert float(close.p.extra_generation_params["W2SD gap"]) < 1e-3
    assert "barely differ" in close.processed.comments and "barely differ" in close.infotext
    assert "barely differ" not in differs.infotext and EQUAL not in differs.infotext


def test_infotext_diagnostics_parse_back_intact(webui):
    """The WebUI's own parser reads every key back whole: warnings with commas and colons, both
    passes' keys (no parentheses in keys: the parser's key pattern has none)."""
    from modules import infotext_utils

    from lib_w2sd.params import W2SDParams

    w2sd = {**CFG1, "weak_lora_multiplier": 0.0, "hires": True, "hires_reflect_steps": 0.25}
    result = webui.generate(w2sd, enable_hr=True, hr_second_pass_steps=8, denoising_strength=0.5)
    parsed = infotext_utils.parse_generation_parameters(result.infotext)
    written = result.p.extra_generation_params
    assert "no LoRA in the txt2img prompt: the LoRA difference is left out" in parsed["W2SD warning"]
    for key in ("W2SD warning", "W2SD reflected", "W2SD hires reflected", "W2SD gap", "W2SD gap high",
                "W2SD hires gap", "W2SD hires gap high"):
        assert parsed[key] == written[key], key
    assert parsed["W2SD hires reflected"] == "2/8" and float(parsed["W2SD hires gap"]) > 0
    assert W2SDParams.from_infotext(parsed) == W2SDParams.from_dict(w2sd)


UNSUPPORTED = [("DDIM", "timesteps"), ("DPM adaptive", "chooses its steps"), ("LCM", "latent consistency")]


@pytest.mark.parametrize("sampler,why", UNSUPPORTED)
def test_unsupported_samplers_run_plain_with_a_warning(webui, sampler, why):
    plain = webui.generate(None, sampler_name=sampler)
    result = webui.generate(CFG1, sampler_name=sampler)
    assert torch.equal(plain.latents, result.latents)
    assert why in result.processed.comments and why in result.infotext


# -- the refiner ----------------------------------------------------------------------------------
REFINER = dict(refiner_checkpoint="refiner.safetensors", refiner_switch_at=0.5)


def models_of_own_calls(result):
    return [c.model for c in result.calls if c.role is None]


def switch_call(base, result, refiner):
    """The index of the sampler's own call that ran first on the refiner (all later ones did too)."""
    models = models_of_own_calls(result)
    switch = models.index(refiner)
    assert set(models[:switch]) == {base} and set(models[switch:]) == {refiner}
    return switch


def assert_reflections_only_before_the_switch(webui, plain, result, base_steps, refiner):
    """W2SD moved no part of the switch: it came at the same own call as without W2SD, every
    reflection ran on the base, and only the base's steps reflected."""
    assert switch_call(webui.model, result, refiner) == switch_call(webui.model, plain, refiner) > 0
    extra = [c for c in result.calls if c.role is not None]
    assert extra and all(c.model is webui.model for c in extra)
    assert len({c.step for c in extra}) == base_steps


@pytest.mark.parametrize("sampler, weak_sigma", [("Euler", "start"), ("Euler", "next"), ("DPM++ 2M", "start"),
                                                 ("Heun", "current"), ("Euler a", "start")])
def test_refiner_reflects_only_the_base_models_steps(webui, tmp_path, sampler, weak_sigma):
    """A1111 switches by the call's noise level (ratio 0.6 at step 3 of 6): steps 0-2 run on the
    base and reflect; 'next' puts a weak call of step 2 at step 3's level, which must not switch."""
    refiner = webui.add_refiner(tmp_path)
    plain = webui.generate(None, sampler_name=sampler, **REFINER)
    w2sd = {**CFG1, "reflect_steps": 1.0, "weak_sigma": weak_sigma}
    result = webui.generate(w2sd, sampler_name=sampler, **REFINER)
    assert_reflections_only_before_the_switch(webui, plain, result, 3, refiner)
    assert "W2SD reflected: 3/6" in result.infotext and "W2SD before refiner: 3/5" in result.infotext
    assert "W2SD warning" not in result.infotext
    asked_three = webui.generate({**w2sd, "reflect_steps": 3, "reflect_unit": "steps"}, sampler_name=sampler,
                                 **REFINER)
    assert torch.equal(result.latents, asked_three.latents)  # the cut is exactly "the first 3 steps"
    assert "W2SD before refiner" not in asked_three.infotext  # nothing asked was left out
    assert not torch.equal(result.latents, plain.latents)
    after = webui.generate(None, sampler_name=sampler, **REFINER)
    assert torch.equal(after.latents, plain.latents)


@pytest.mark.parametrize("sampler, base_steps", [("Euler", 3), ("Heun", 3), ("DPM fast", 2)])
def test_refiner_switching_by_sampling_steps(webui, tmp_path, sampler, base_steps):
    """Setting 'switch to refiner by sampling steps': the ratio counts the sampler's own calls
    (W2SD's never count). DPM fast's 3 steps take 2, 2 and 1 calls under W2SD (its third-order
    step runs at second order before a reflection), so the switch comes in its second step's
    second call; the estimate of one call per step misses that, and W2SD stops reflecting at the
    third step by asking before it (the safety net)."""
    webui.settings(refiner_switch_by_sample_steps=True)
    refiner = webui.add_refiner(tmp_path)
    plain = webui.generate(None, sampler_name=sampler, **REFINER)
    result = webui.generate({**CFG1, "reflect_steps": 1.0}, sampler_name=sampler, **REFINER)
    assert_reflections_only_before_the_switch(webui, plain, result, base_steps, refiner)
    assert f"W2SD reflected: {base_steps}/" in result.infotext


def test_refiner_from_the_first_step_reflects_nothing_with_a_warning(webui, tmp_path):
    webui.add_refiner(tmp_path)
    plain = webui.generate(None, refiner_checkpoint="refiner.safetensors", refiner_switch_at=0.0)
    result = webui.generate(CFG1, refiner_checkpoint="refiner.safetensors", refiner_switch_at=0.0)
    assert torch.equal(result.latents, plain.latents)
    assert set(result.roles()) == {None}
    assert "the refiner takes over at the first step of the txt2img pass" in result.infotext
    assert "W2SD reflected: 0/6" in result.infotext


def test_refiner_reloads_the_base_for_each_batch_and_both_reflect(webui, tmp_path):
    refiner = webui.add_refiner(tmp_path)
    plain = webui.generate(None, n_iter=2, **REFINER)
    result = webui.generate({**CFG1, "reflect_steps": 1.0}, n_iter=2, **REFINER)
    assert models_of_own_calls(result) == models_of_own_calls(plain) == ([webui.model] * 3 + [refiner] * 3) * 2
    assert [c.step for c in result.calls if c.role == "weak"] == [0, 1, 2] * 2


def base_steps_of(result, hires: bool, base):
    """Steps the base model started in one pass of a plain Euler run (one call per step)."""
    return sum(1 for c in result.calls if c.role is None and c.hires == hires and c.model is base)


@pytest.mark.parametrize("which", ["second pass", "first pass", "both passes"])
def test_refiner_with_hires_fix_switches_in_the_pass_the_setting_names(webui, tmp_path, which):
    """Setting 'Hires fix: which pass to enable refiner for'. A pass the refiner runs from its first
    step (the hires pass after a first-pass switch) runs plain with a warning."""
    webui.settings(hires_fix_refiner_pass=which)
    webui.add_refiner(tmp_path)
    w2sd = {**CFG1, "reflect_steps": 1.0, "hires": True, "hires_reflect_steps": 1.0}
    options = dict(enable_hr=True, hr_second_pass_steps=8, denoising_strength=0.5, refiner_switch_at=0.7,
                   refiner_checkpoint="refiner.safetensors")
    plain = webui.generate(None, **options)
    result = webui.generate(w2sd, **options)
    first, second = base_steps_of(plain, False, webui.model), base_steps_of(plain, True, webui.model)
    assert all(c.model is webui.model for c in result.calls if c.role is not None)
    if which == "second pass":
        assert first == 6 and 0 < second < 7
        assert "W2SD reflected: 5/6" in result.infotext
        assert f"W2SD hires reflected: {second}/8" in result.infotext
        assert f"W2SD hires before refiner: {second}/7" in result.infotext
    else:
        assert 0 < first < 5 and second == 0
        assert f"W2SD reflected: {first}/6" in result.infotext
        assert "runs this whole pass" in result.infotext and "W2SD hires reflected" not in result.infotext
        assert not any(c.role for c in result.calls if c.hires)


def test_refiner_that_is_the_loaded_checkpoint_never_switches(webui, tmp_path):
    webui.add_refiner(tmp_path)
    result = webui.generate(CFG1, refiner_checkpoint="base.safetensors", refiner_switch_at=0.5)
    assert "W2SD reflected: 3/6" in result.infotext and "refiner" not in result.infotext.lower()


def test_api_dict_followed_by_the_uis_default_values(webui):
    result = webui.generate(args=[dict(CFG1), 0.5, "fraction", 1.0])
    assert "W2SD reflected: 3/6" in result.infotext


# -- one UNet batch for strong and weak ------------------------------------------------------------
# the same tests on both WebUIs' stand-ins (webui_patterns.joint_tests)
globals().update(joint_tests(hires=dict(enable_hr=True, hr_second_pass_steps=4, denoising_strength=0.5)))


def test_joint_conds_put_the_weak_prompt_at_weight_0_and_refuse_other_token_counts(webui):
    from modules import prompt_parser

    from lib_w2sd.webui import detect_backend

    def multicond(tokens, weights=(1.0,)):
        schedules = [prompt_parser.ScheduledPromptConditioning(5, torch.randn(tokens, 8))]
        return prompt_parser.MulticondLearnedConditioning(
            (1,), [[prompt_parser.ComposableScheduledPromptConditioning(schedules, w) for w in weights]])

    backend = detect_backend()
    own, weak = multicond(6, (1.0, 0.5)), multicond(6)
    both = backend.joint_conds(None, own, weak)
    assert [c.weight for c in both.batch[0]] == [1.0, 0.5, 0.0]
    assert both.batch[0][2].schedules is weak.batch[0][0].schedules
    assert backend.joint_conds(None, own, None) is own  # a CFG difference: the same conds
    assert backend.joint_conds(None, own, multicond(7)) is None  # would be padded: two calls


# -- a new user's first generations ----------------------------------------------------------------
def test_no_difference_chosen_runs_no_reflection_with_one_notice(webui):
    """Opening the accordion ticks W2SD; with preset Custom and nothing ticked the generation is
    the plain one, with no extra model call, and says so once."""
    from lib_w2sd.params import W2SDParams

    plain = webui.generate(None)
    ui_default = W2SDParams.from_list([True]).to_list()  # the UI's list with only the header ticked
    result = webui.generate(args=ui_default)
    assert torch.equal(result.latents, plain.latents)
    assert result.roles() == plain.roles() == [None] * 6
    notice = ("W2SD: no weak-model difference is chosen (tick one under 'Weak model differs by' or pick a "
              "preset), so nothing is reflected")
    assert result.processed.comments.strip() == notice
    assert "W2SD: none" in result.infotext and "W2SD reflected" not in result.infotext


def test_prompt_ticked_with_an_empty_weak_prompt_says_so_and_keeps_the_tick(webui):
    from lib_w2sd.params import UI_FIELDS, W2SDParams

    values = dict(zip(UI_FIELDS, W2SDParams.from_list([True]).to_list()), weak_kinds=["Prompt"])
    result = webui.generate(args=[values[name] for name in UI_FIELDS])
    assert result.roles() == [None] * 6
    assert "Prompt is ticked but Weak prompt and Weak negative prompt are empty" in result.processed.comments
    assert "W2SD: Prompt," in result.infotext  # a paste ticks Prompt again


def test_whole_number_without_a_unit_reflects_that_many_steps(webui):
    """The issue's API request {"enabled": true, "weak_cfg": 1.0, "reflect_steps": 5}."""
    result = webui.generate({"enabled": True, "weak_cfg": 1.0, "reflect_steps": 5}, steps=8)
    assert "W2SD reflected: 5/8" in result.infotext and "W2SD steps unit: steps" in result.infotext


def test_hires_keys_only_with_a_hires_pass(webui):
    w2sd = {**CFG1, "hires": True, "hires_reflect_steps": 0.25}
    off = webui.generate(w2sd)
    assert "W2SD hires" not in off.infotext and "W2SD reflected: 3/6" in off.infotext
    on = webui.generate(w2sd, enable_hr=True, hr_second_pass_steps=8, denoising_strength=0.5)
    assert "W2SD hires steps: 0.25" in on.infotext and "W2SD hires reflected: " in on.infotext
