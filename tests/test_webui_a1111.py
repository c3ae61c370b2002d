"""The real scripts/w2sd.py driven through the A1111 v1.10 stand-in (tests/stubs): every weak
kind and pass, with the denoiser calls counted (a TinySD UNet on the CPU, real k-diffusion
samplers)."""

import pytest
import torch
from webui_patterns import (
    assert_only_weak_calls_see_the_weak_prompt,
    joint_tests,
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


def test_sdxl_dict_conds(webui):
    import tiny_sd
    from modules import shared

    shared.sd_model = tiny_sd.TinySD(sdxl=True)
    try:
        plain = webui.generate(None)
        shared.sd_model.unet.calls.clear()
        result = webui.generate({**CFG1, "weak_prompt": "a dog"})
        assert not torch.equal(plain.latents, result.latents)
        assert isinstance(result.calls[0].text_cond, dict)
        # per reflected step one joint call: cond, weak cond and uncond rows; then the sampler's own
        assert shared.sd_model.unet.calls == [3, 2] * 3 + [2] * 3
    finally:
        shared.sd_model = webui.model


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
    from modules import scripts

    class BlendCounter(scripts.Script):
        blends = 0

        def title(self):
            return "blend counter"

        def show(self, is_img2img):
            return scripts.AlwaysVisible

        def on_mask_blend(self, p, mba, *args):
            BlendCounter.blends += mba.denoiser is not None

    webui.extra_scripts.append(BlendCounter())
    mask = torch.zeros(32, 32)
    mask[:, :16] = 1
    result = webui.generate(CFG1, img2img=True, mask=mask, denoising_strength=0.75, steps=8)
    assert BlendCounter.blends == len(result.calls) > 8
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


def test_same_weak_and_strong_barely_changes_the_image(webui):
    plain = webui.generate(None)
    same = webui.generate({"enabled": True, "weak_cfg": 7.0, "reflect_steps": 0.5})
    differs = webui.generate(CFG1)
    assert torch.equal(same.latents, plain.latents)  # 'start': an exact identity, bit for bit
    assert not torch.equal(differs.latents, plain.latents)
    assert same.p.extra_generation_params["W2SD gap"] == "0"
    assert same.p.extra_generation_params["W2SD gap high"] == "0"
    assert "barely differ" in same.processed.comments and "barely differ" in same.infotext
    assert "barely differ" not in differs.infotext


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


def test_refiner_runs_plain_with_a_warning(webui, tmp_path):
    import harness

    harness.write_checkpoint(tmp_path / "refiner.safetensors", webui.model.unet)
    webui.register_checkpoints(tmp_path)
    result = webui.generate(CFG1, refiner_checkpoint="refiner.safetensors", refiner_switch_at=0.5)
    assert "refiner" in result.processed.comments
    assert set(result.roles()) == {None}


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
