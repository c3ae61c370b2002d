"""The real scripts/w2sd.py driven through the stand-in of the forks that kept Forge's first backend
(tests/stubs_oldforge: reForge main 3b56b268 and Forge Classic 1f95d717), once as each fork: the
kinds their adapter runs (CFG, weak prompt and negative prompt, SDXL's dict conds, hires,
img2img, inpainting, the joint strong+weak call) through their CFG denoiser and ldm_patched's
sampling_function, the kinds it refuses (LoRA, weak checkpoint, ControlNet) left out with one
sentence naming the kind and the WebUI, and restoration after errors and interrupts. A tiny UNet
on the CPU, real k-diffusion samplers."""

import sys

import pytest
import torch
from state_patterns import harness_checkpoint, patcher_weak_unet, state_tests
from test_webui_detection import LAYOUTS, make_tree
from test_webui_forge import (  # noqa: F401 - the Forge suite's own tests, run here on the old backend
    test_disabled_changes_nothing,
    test_dpm_adaptive_runs_plain_with_a_warning,
    test_lora_at_the_prompts_own_multiplier_is_no_difference,
    test_lora_difference_without_a_lora_in_the_prompt_warns,
    test_merged_dora_is_refused_with_a_clear_warning,
    test_prompt_editing_timing_is_not_shifted_by_reflections,
)
from webui_patterns import (
    assert_only_weak_calls_see_the_weak_prompt,
    check_sdxl_weak_conds_follow_size_and_crop,
    inpainting_mask,
    joint_tests,
    record_mask_blends,
)

STAND_IN = "stubs_oldforge"
CFG1 = {"enabled": True, "weak_cfg": 1.0, "reflect_steps": 0.5}
NAMES = {"reforge": "reForge 1.0.0v2-v1.10.1RC", "forge_classic": "Forge Classic"}


@pytest.fixture(scope="module", params=["reforge", "forge_classic"])
def box(stand_in, request, tmp_path_factory):
    """The stand-in playing `request.param`, detected from that fork's root layout."""
    import harness

    from lib_w2sd import webui

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only cost time
    root = make_tree(tmp_path_factory.mktemp(request.param), LAYOUTS[request.param])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(webui, "webui_root", lambda: root)
        webui.reset_backend()
        yield harness.WebUI(request.param)
        webui.reset_backend()
    torch.set_num_threads(threads)
    for name in harness.BORROWED:  # bound to this stand-in's `modules`
        sys.modules.pop(name, None)


@pytest.fixture
def webui(box):
    box.reset()
    yield box
    box.reset()


def reforge_only(webui):
    if webui.fork != "reforge":
        pytest.skip("reForge only")


def hires(webui, hr_cfg=5.0, **kwargs):
    """generate() arguments of a hires-fix pass; reForge's has its own CFG (R:processing.py:1298)."""
    options = dict(enable_hr=True, hr_scale=1.5, steps=4, **kwargs)
    return dict(options, hr_cfg=hr_cfg) if webui.fork == "reforge" else options


# -- the adapter ----------------------------------------------------------------------------------
def test_the_fork_is_detected_and_gets_the_old_backend_adapter(webui):
    from lib_w2sd.webui import detect_backend
    from lib_w2sd.webui.adapters.old_forge import OldForgeBackend

    backend = detect_backend()
    assert isinstance(backend, OldForgeBackend) and str(backend.webui) == NAMES[webui.fork]
    assert backend.unsupported is None
    assert "backend" not in sys.modules  # Forge 2's backend is not there




# -- CFG ------------------------------------------------------------------------------------------
def test_weak_cfg_1_comes_from_the_strong_calls_batch(webui):
    result = webui.generate(CFG1, batch_size=2)
    assert result.batches() == webui.reflected_pattern(6, 3, strong_rows=4, weak_rows=None, normal_rows=4, batch=2)
    assert result.roles()[:3] == ["strong", "weak", None]
    assert "W2SD reflected: 3/6" in result.infotext and "W2SD warning" not in result.infotext


def test_weak_cfg_1_in_a_call_of_its_own_runs_the_conditional_batch_only(webui, monkeypatch):
    """ldm_patched's sampling_function drops the uncond batch at scale 1 (C:samplers.py:341-347,
    R:samplers.py:414-417)."""
    import lib_w2sd.webui.common as common

    monkeypatch.setattr(common, "make_joint_denoiser", lambda *args, **kw: None)
    result = webui.generate(CFG1, batch_size=2)
    assert result.batches() == webui.reflected_pattern(6, 3, strong_rows=4, weak_rows=2, normal_rows=4, batch=2)


def test_disable_cfg1_optimization_keeps_the_uncond_batch_at_scale_1(webui, monkeypatch):
    import lib_w2sd.webui.common as common

    monkeypatch.setattr(common, "make_joint_denoiser", lambda *args, **kw: None)
    webui.model.forge_objects_after_applying_lora.unet.model_options["disable_cfg1_optimization"] = True
    result = webui.generate({**CFG1, "reflect_steps": 1.0})
    assert [rows for role, rows in result.batches() if role == "weak"] == [2] * 5


def test_weak_cfg_other_than_1_changes_the_image(webui):
    plain = webui.generate(None)
    weak3 = webui.generate({**CFG1, "weak_cfg": 3.0})
    weak1 = webui.generate(CFG1)
    assert weak3.batches() == webui.reflected_pattern(6, 3, 2, None, 2)
    assert not torch.equal(weak3.latents, plain.latents)
    assert not torch.equal(weak3.latents, weak1.latents)


def test_classic_runs_the_first_step_at_cfg_1_for_w2sd_calls_too(webui):
    """Forge Classic forces cond_scale 1 while step/total_steps <= skip_early_cond, at step 0 even
    with the option at 0: there strong and weak are the same model, and the gap is 0."""
    if webui.fork != "forge_classic":
        pytest.skip("Forge Classic only")
    result = webui.generate({**CFG1, "reflect_steps": 1 / 6})
    assert result.batches() == [("strong", 1), (None, 1)] + [(None, 2)] * 5
    assert result.p.extra_generation_params["W2SD gap"] == "0"


def test_hires_pass_uses_hr_cfg_and_the_w2sd_scales(webui):
    """reForge's hires denoiser takes its scale from p.hr_cfg, not from cond_scale
    (R:sd_samplers_cfg_denoiser.py:180-181): each W2SD call sets it for itself and puts it back."""
    reforge_only(webui)
    scales = []
    webui.observers.append(lambda call, p: scales.append((call.role, p.hr_cfg)) if call.hires else None)
    result = webui.generate({**CFG1, "strong_cfg": 5.0, "hires": True, "hires_reflect_steps": 0.5},
                            **hires(webui, hr_cfg=3.0))
    assert scales == [("strong", 5.0), ("weak", 1.0), (None, 3.0)] * 2 + [(None, 3.0)] * 2
    assert result.p.hr_cfg == 3.0
    assert "W2SD hires reflected: 2/4" in result.infotext


def test_hires_cfg_0_means_the_first_pass_cfg(webui):
    """reForge's hr_cfg 0 takes the first pass's CFG (R:processing.py:1644-1646): the pass's own scale
    W2SD compares with is that one, so a strong CFG at it is no difference."""
    reforge_only(webui)
    result = webui.generate({**CFG1, "strong_cfg": 7.0, "hires": True}, **hires(webui, hr_cfg=0))
    assert result.p.hr_cfg == 7.0
    assert "W2SD hires reflected" in result.infotext


def test_classic_hires_pass_runs_at_the_generation_cfg(webui):
    if webui.fork != "forge_classic":
        pytest.skip("Forge Classic only")
    plain = webui.generate(None, **hires(webui))
    same = webui.generate({**CFG1, "weak_cfg": 5.0, "strong_cfg": 5.0, "hires": True}, **hires(webui))
    result = webui.generate({**CFG1, "hires": True}, **hires(webui))
    assert "W2SD hires reflected: 2/4" in result.infotext and not torch.equal(result.latents, plain.latents)
    assert "W2SD hires gap: 0" in same.infotext


def test_classic_hires_cfg_difference_does_not_warn_that_the_models_barely_differ(webui):
    """On Classic a short hires pass's only high-noise step is the CFG-1 step, where weak and strong
    calls are alike (its gap high is 0): the pass's mean gap shows the reflections do change it."""
    if webui.fork != "forge_classic":
        pytest.skip("Forge Classic only")
    plain = webui.generate(None, **hires(webui, denoising_strength=0.5))
    result = webui.generate({**CFG1, "hires": True}, **hires(webui, denoising_strength=0.5))
    diagnostics = result.p.extra_generation_params
    assert diagnostics["W2SD hires gap high"] == "0" and float(diagnostics["W2SD hires gap"]) > 1e-3
    assert not torch.equal(result.latents, plain.latents)
    assert "barely differ" not in result.infotext


def test_hires_off_leaves_the_second_pass_plain(webui):
    result = webui.generate(CFG1, **hires(webui))
    assert all(c.role is None for c in result.calls if c.hires)


# -- prompts --------------------------------------------------------------------------------------
def test_weak_prompt_is_encoded_once_and_used_by_the_weak_call_only(webui):
    result = webui.generate({**CFG1, "weak_cfg": None, "weak_prompt": "a dog"}, n_iter=2, batch_size=2)
    assert webui.model.cond_stage_model.encoded.count("a dog") == 1  # two batches, one encoding
    assert_only_weak_calls_see_the_weak_prompt(result)


def test_weak_negative_prompt_is_the_weak_calls_uncond(webui):
    result = webui.generate({**CFG1, "weak_cfg": None, "weak_negative_prompt": "sharp"})
    reference = webui.generate(None, negative_prompt="sharp")
    weak = [c.text_uncond for c in result.calls if c.role == "weak"]
    assert weak and all(torch.equal(u, reference.calls[0].text_uncond) for u in weak)
    assert all(torch.equal(c.text_uncond, result.calls[-1].text_uncond) for c in result.calls if c.role != "weak")




def test_dynamic_clip_skip_refuses_the_weak_prompt_and_keeps_the_cfg_difference(webui):
    """reForge's denoiser swaps in its own per-step conds (R:sd_samplers_cfg_denoiser.py:140-148)."""
    reforge_only(webui)
    webui.settings(dynamic_clip_skip_enabled=True)
    result = webui.generate({**CFG1, "weak_prompt": "a dog"}, dynamic_clip_skip_schedule=[3, 2, 2, 2, 2, 2],
                            dynamic_clip_skip_sets={})
    assert ("reForge 1.0.0v2-v1.10.1RC: a weak prompt cannot run with the setting 'Dynamic clip skip ramp' on"
            in result.infotext) and "the weak prompt difference is left out" in result.infotext
    assert "a dog" not in webui.model.cond_stage_model.encoded
    assert "W2SD reflected: 3/6" in result.infotext


def test_sdxl_dict_conds(webui):
    from harness import TinySD

    webui.load(TinySD(sdxl=True))
    result = webui.generate({**CFG1, "weak_prompt": "a dog", "strong_cfg": 5.0})
    assert "W2SD reflected: 3/6" in result.infotext and "W2SD warning" not in result.infotext
    assert set(result.calls[0].text_cond) == {"crossattn", "vector"}


def test_sdxl_weak_prompts_get_the_webuis_own_conds_with_size_and_crop(webui):
    from harness import TinySD

    webui.load(TinySD(sdxl=True))
    check_sdxl_weak_conds_follow_size_and_crop(webui, hires(webui, width=32, height=48))


# -- LoRA -----------------------------------------------------------------------------------------
LORA = {"enabled": True, "weak_lora_multiplier": -1.5, "strong_lora_multiplier": 1.5, "reflect_steps": 0.5}
LORA_PROMPT = "a red cat <lora:style:0.8>"


def parameters(module):
    """name -> the parameter object itself (its identity and its values)."""
    return dict(module.named_parameters())


@pytest.fixture
def context_weights(webui):
    """Filled per forward of the UNet's context layer: (role of the CFG denoiser call, a copy of the
    weight it ran with), read as its forward ends (before any other hook of that layer)."""
    seen, role = [], [None]
    webui.observers.append(lambda call, p: role.__setitem__(0, call.role))
    handle = webui.model.unet.context.register_forward_hook(
        lambda module, args, output: seen.append((role[0], module.weight.clone())), prepend=True)
    yield seen
    handle.remove()


def hooks(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def merged_context_weight(webui, multiplier):
    """The context layer's weight as the fork merges the LoRA at `multiplier` (a plain generation)."""
    webui.generate(None, prompt=f"a red cat <lora:style:{multiplier}>", steps=1)
    return webui.model.unet.context.weight.clone()


def test_lora_difference_runs_each_call_at_its_multiplier_without_writing_a_weight(webui, context_weights):
    webui.add_lora()
    at = {m: merged_context_weight(webui, m) for m in (-1.5, 1.5)}
    before = webui.generate(None, prompt=LORA_PROMPT)
    merged = parameters(webui.model.unet)
    values = {k: v.clone() for k, v in merged.items()}
    context_weights.clear()
    result = webui.generate(LORA, prompt=LORA_PROMPT)
    own, seen = webui.model.unet.context.weight, context_weights
    assert {role for role, _ in seen} == {None, "strong", "weak"}
    assert hooks(webui.model.unet) == 1  # the test's own: W2SD's are gone
    for role, weight in seen:
        expected = {None: own, "strong": at[1.5], "weak": at[-1.5]}[role]
        torch.testing.assert_close(weight, expected, rtol=1e-5, atol=1e-6)
    after = parameters(webui.model.unet)
    assert all(after[k] is merged[k] and torch.equal(after[k], values[k]) for k in merged)  # the same objects
    assert not torch.equal(result.latents, before.latents)
    assert "W2SD warning" not in result.infotext
    assert torch.equal(webui.generate(None, prompt=LORA_PROMPT).latents, before.latents)
    plain = webui.generate(None)  # the LoRA taken off: the checkpoint's weights, bit for bit
    webui.reset()
    assert torch.equal(webui.generate(None).latents, plain.latents)


def test_lora_switch_merges_without_reforges_deprecation_warning(webui, caplog):
    """reForge's ModelPatcher.calculate_weight logs a deprecation warning on every call (R:model_patcher.py
    :868-870): a real reForge logged 1728 of them for one LoRA-difference generation. The switch merges
    with ldm_patched.modules.lora.calculate_weight where the fork has it, the patcher's method on Classic."""
    webui.add_lora()
    with caplog.at_level("WARNING"):
        result = webui.generate(LORA, prompt=LORA_PROMPT)
    assert "W2SD reflected: 3/6" in result.infotext and "W2SD warning" not in result.infotext
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]


def test_two_loras_at_other_multipliers_each_get_the_target(webui, context_weights):
    webui.add_lora()
    webui.add_lora("detail", seed=9)
    prompt = "a red cat <lora:style:0.8> <lora:detail:0.3>"
    webui.generate(None, prompt="a red cat <lora:style:-1.5> <lora:detail:-1.5>", steps=1)
    both_at_weak = webui.model.unet.context.weight.clone()
    result = webui.generate(LORA, prompt=prompt)
    assert "W2SD reflected: 3/6" in result.infotext
    weak = [w for role, w in context_weights if role == "weak"]
    assert len(weak) == 3
    torch.testing.assert_close(weak[0], both_at_weak, rtol=1e-5, atol=1e-6)


def test_lora_in_the_hires_pass(webui):
    webui.add_lora()
    before = webui.generate(None, prompt=LORA_PROMPT, **hires(webui))
    result = webui.generate({**LORA, "hires": True}, prompt=LORA_PROMPT, **hires(webui))
    assert "W2SD hires reflected: 2/4" in result.infotext and "W2SD warning" not in result.infotext
    assert torch.equal(webui.generate(None, prompt=LORA_PROMPT, **hires(webui)).latents, before.latents)




def test_an_error_inside_a_switched_layer_puts_its_parameter_back(webui, monkeypatch):
    webui.add_lora()
    before = webui.generate(None, prompt=LORA_PROMPT)
    merged = parameters(webui.model.unet)
    layer, role = webui.model.unet.output, [None]
    forward = layer.forward
    webui.observers.append(lambda call, p: role.__setitem__(0, call.role))

    def failing(x):
        if role[0] == "weak":
            raise RuntimeError("boom inside the layer")
        return forward(x)

    monkeypatch.setattr(layer, "forward", failing)
    result = webui.generate(LORA, prompt=LORA_PROMPT)
    monkeypatch.undo()
    assert "boom inside the layer" in result.infotext and torch.equal(result.latents, before.latents)
    assert all(parameters(webui.model.unet)[k] is v for k, v in merged.items()) and hooks(webui.model.unet) == 0






def test_an_error_in_a_switched_call_restores_every_parameter(webui):
    webui.add_lora()
    before = webui.generate(None, prompt=LORA_PROMPT)
    merged = parameters(webui.model.unet)

    def boom(call, p):
        if call.role == "weak":
            raise RuntimeError("boom in the weak call")

    webui.observers.append(boom)
    result = webui.generate(LORA, prompt=LORA_PROMPT)
    assert "boom in the weak call" in result.infotext and "generated without W2SD" in result.infotext
    assert torch.equal(result.latents, before.latents)
    assert all(parameters(webui.model.unet)[k] is v for k, v in merged.items()) and hooks(webui.model.unet) == 0
    assert getattr(result.p, "w2sd_old_forge_lora", None) is None


# -- another checkpoint ---------------------------------------------------------------------------
CHECKPOINT = {"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5}


def own_first_step(webui, rows):
    """UNet rows per weak call of the reflected steps; Forge Classic runs the first step at CFG 1."""
    return [1] + rows[1:] if webui.fork == "forge_classic" else rows


def test_weak_checkpoint_runs_the_weak_calls_only_with_one_more_unet_of_memory(webui):
    from ldm_patched.modules import model_management

    webui.add_checkpoint("weak.safetensors")
    plain = webui.generate(None)
    result = webui.generate(CHECKPOINT)
    weak = webui.weak_unet()
    assert weak is not None and weak is not webui.model.unet
    assert weak.calls == own_first_step(webui, [2, 2, 2])  # one weak call per reflected step: cond + uncond
    assert result.batches() == webui.reflected_pattern(6, 3, strong_rows=2, weak_rows=None, normal_rows=2)
    assert not torch.equal(result.latents, plain.latents) and "W2SD warning" not in result.infotext
    assert webui.model.forge_objects.unet.model.diffusion_model is webui.model.unet  # put back
    assert model_management.module_size(weak) == model_management.module_size(webui.model.unet)
    assert torch.equal(webui.generate(None).latents, plain.latents)


def test_weak_checkpoint_is_read_once_through_the_forks_loader_unet_only(webui, monkeypatch):
    from modules_forge import forge_loader

    reads = []
    load = forge_loader.load_checkpoint_guess_config
    monkeypatch.setattr(forge_loader, "load_checkpoint_guess_config",
                        lambda sd, **kw: reads.append((sorted(sd), kw)) or load(sd, **kw))
    webui.add_checkpoint("weak.safetensors")
    first = webui.generate({**CHECKPOINT, "hires": True}, **hires(webui))
    second = webui.generate({**CHECKPOINT, "hires": True}, **hires(webui))
    assert len(reads) == 1 and torch.equal(first.latents, second.latents)
    keys, options = reads[0]
    assert all(k.startswith("model.diffusion_model.") for k in keys)  # no text encoder, no VAE
    assert options == dict(output_vae=False, output_clip=False, output_clipvision=False, output_model=True)
    webui.add_checkpoint("weak.safetensors", seed=6)  # the file changed: read again
    webui.generate(CHECKPOINT)
    assert len(reads) == 2


@pytest.mark.parametrize("policy, loaded, cached", [("gpu", True, True), ("offload", False, True),
                                                    ("unload", False, False)])
def test_weak_checkpoint_memory_policy(webui, policy, loaded, cached):
    from ldm_patched.modules import model_management

    from lib_w2sd.webui.adapters import old_forge_unet

    webui.settings(w2sd_checkpoint_memory=policy)
    webui.add_checkpoint("weak.safetensors")
    webui.generate(CHECKPOINT)
    models = [m.model.model for m in model_management.current_loaded_models]
    assert any(m is webui.model.forge_objects.unet.model for m in models)  # the WebUI's own UNet stays
    assert (len(models) == 2) is loaded
    assert (old_forge_unet.cache.entry is not None) is cached


@pytest.mark.parametrize("filename, kwargs, message", [
    ("xl.safetensors", dict(sdxl=True), "does not fit the loaded model's UNet"),
    ("inpaint.safetensors", dict(inpainting=True), "input.weight is [8, 9, 3, 3] there but [8, 4, 3, 3]"),
    ("vpred.safetensors", dict(v_pred=True), "V_PREDICTION"),
    ("old.ckpt", {}, "not a .safetensors file"),
])
def test_unusable_weak_checkpoints_fall_back_with_a_clear_warning(webui, filename, kwargs, message):
    webui.add_checkpoint(filename, **kwargs)
    plain = webui.generate(None)
    result = webui.generate({**CHECKPOINT, "weak_checkpoint": filename})
    assert message in result.infotext and "generated without W2SD" in result.infotext
    assert torch.equal(result.latents, plain.latents)


def test_unusable_weak_checkpoint_fails_the_generation_under_fail(webui):
    from lib_w2sd.webui.common import W2SDFailure

    webui.settings(w2sd_on_error="fail")
    webui.add_checkpoint("xl.safetensors", sdxl=True)
    with pytest.raises(W2SDFailure, match="does not fit"):
        webui.generate({**CHECKPOINT, "weak_checkpoint": "xl.safetensors"})


def test_checkpoint_and_lora_combined_switch_lora_only_on_the_strong_unet(webui, context_weights):
    webui.add_lora()
    webui.add_checkpoint("weak.safetensors")
    result = webui.generate({**LORA, **CHECKPOINT, "weak_cfg": 1.0}, prompt=LORA_PROMPT)
    assert webui.weak_unet().calls == [1, 1, 1]  # weak CFG 1: the conditional batch only
    assert {role for role, _ in context_weights} == {None, "strong"}  # the weak calls ran another UNet
    assert "W2SD warning" not in result.infotext
    assert hooks(webui.model.unet) == 1 and hooks(webui.weak_unet()) == 0


def test_sdxl_weak_checkpoint(webui):
    from harness import TinySD

    webui.load(TinySD(sdxl=True))
    webui.add_checkpoint("weak.safetensors", sdxl=True)
    plain = webui.generate(None)
    result = webui.generate(CHECKPOINT)
    assert webui.weak_unet().calls == own_first_step(webui, [2, 2, 2]) and "W2SD warning" not in result.infotext
    assert not torch.equal(result.latents, plain.latents)


# -- kinds refused on the old backend -------------------------------------------------------------
REFUSED = [
    ("controlnet", {"weak_controlnet_weight": 0.5}, "ControlNet", "the ControlNet difference is not supported"),
]


@pytest.mark.parametrize("kind, fields, label, reason", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_refused_kind_alone_leaves_the_image_plain_with_one_sentence(webui, kind, fields, label, reason):
    plain = webui.generate(None, prompt="a red cat <lora:style:0.8>")
    result = webui.generate({"enabled": True, "reflect_steps": 0.5, **fields}, prompt="a red cat <lora:style:0.8>")
    sentence = f"W2SD: {NAMES[webui.fork]}: {reason}"
    assert torch.equal(result.latents, plain.latents) and set(result.roles()) == {None}
    assert any(c.startswith(sentence) and c.endswith(f"the {label} difference is left out")
               for c in result.p.comments)
    assert "Forge's first backend (ldm_patched)" in result.infotext and "Traceback" not in result.infotext


@pytest.mark.parametrize("kind, fields, label, reason", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_refused_kind_leaves_the_other_kinds_reflecting(webui, kind, fields, label, reason):
    plain = webui.generate(None)
    cfg_only = webui.generate(CFG1)
    result = webui.generate({**CFG1, **fields})
    assert torch.equal(result.latents, cfg_only.latents) and not torch.equal(result.latents, plain.latents)
    assert f"the {label} difference is left out" in result.infotext and "W2SD reflected: 3/6" in result.infotext


def test_no_difference_is_bit_identical_with_the_warning(webui):
    plain = webui.generate(None)
    same = webui.generate({**CFG1, "weak_cfg": 7.0})
    assert torch.equal(same.latents, plain.latents) and set(same.roles()) == {None}
    assert "the weak model equals the strong one" in same.infotext


# -- img2img and inpainting -----------------------------------------------------------------------
def test_inpainting_leaves_the_global_rng_as_plain_sampling_does(webui):
    """Forge Classic pre-blends every denoiser call with global-RNG noise (C:119-121); extra calls
    put the RNG back. reForge blends after the call, through on_mask_blend (R:261-262)."""
    blends = record_mask_blends(webui)
    torch.manual_seed(0)
    plain = webui.generate(None, img2img=True, mask=inpainting_mask(), denoising_strength=0.6)
    after_plain = torch.get_rng_state()
    blends.clear()
    torch.manual_seed(0)
    result = webui.generate(CFG1, img2img=True, mask=inpainting_mask(), denoising_strength=0.6)
    assert torch.equal(torch.get_rng_state(), after_plain)
    assert not hasattr(result.p.sampler.func, "w2sd_original")  # img2img keeps its sampler: unwrapped
    assert blends == (result.roles() if webui.fork == "reforge" else [])
    assert torch.equal(result.latents[:, :, :, 2:], plain.latents[:, :, :, 2:])  # the kept half stays
    assert not torch.equal(result.latents, plain.latents)
    assert "W2SD reflected: 2/4" in result.infotext  # 0.6 of 6 steps sampled, half reflected


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "Heun", "DPM++ 2M", "DPM++ 2M SDE"])
def test_every_kind_it_runs_on_the_usual_samplers_txt2img_img2img_and_hires(webui, sampler):
    webui.add_lora()
    w2sd = {"enabled": True, "weak_cfg": 1.0, "weak_prompt": "a dog", "weak_negative_prompt": "sharp",
            "weak_lora_multiplier": -1.0, "reflect_steps": 0.5, "hires": True}
    for kwargs in (dict(), dict(img2img=True), hires(webui)):
        result = webui.generate(w2sd, sampler_name=sampler, prompt=LORA_PROMPT, **{"steps": 4, **kwargs})
        assert "W2SD reflected" in result.infotext and "W2SD warning" not in result.infotext, result.infotext




# -- faults ---------------------------------------------------------------------------------------
def test_an_error_in_a_weak_call_falls_back_and_restores_everything(webui):
    before = webui.generate(None, **hires(webui, hr_cfg=4.0))

    def boom(call, p):
        if call.role == "weak":
            raise RuntimeError("boom in the weak call")

    webui.observers.append(boom)
    result = webui.generate({**CFG1, "hires": True}, **hires(webui, hr_cfg=4.0))
    assert "boom in the weak call" in result.infotext and "generated without W2SD" in result.infotext
    assert torch.equal(result.latents, before.latents)
    assert getattr(result.p, "hr_cfg", 4.0) == 4.0 and result.p.w2sd_extra_call is None
    webui.observers.clear()
    assert torch.equal(webui.generate(None, **hires(webui, hr_cfg=4.0)).latents, before.latents)


@pytest.mark.parametrize("flag", ["interrupted", "skipped"])
def test_interrupt_or_skip_in_a_reflected_step_stops_cleanly(webui, flag):
    from modules import shared

    webui.add_lora()
    webui.add_checkpoint("weak.safetensors")
    before = webui.generate(None, prompt=LORA_PROMPT)
    merged = parameters(webui.model.unet)

    def stop(call, p):
        if call.role == "weak" and call.step == 1:
            setattr(shared.state, flag, True)

    webui.observers.append(stop)
    result = webui.generate({**CFG1, **LORA, **CHECKPOINT, "weak_prompt": "a dog"}, prompt=LORA_PROMPT)
    assert webui.model.forge_objects.unet.model.diffusion_model is webui.model.unet
    assert result.roles()[-1] == "weak" and len(result.calls) < 12  # nothing ran after the interrupt
    assert result.p.sampler.last_latent is not None and result.p.w2sd_extra_call is None
    assert all(parameters(webui.model.unet)[k] is v for k, v in merged.items()) and hooks(webui.model.unet) == 0
    webui.observers.clear()
    assert torch.equal(webui.generate(None, prompt=LORA_PROMPT).latents, before.latents)


def test_a_plain_generation_after_a_failed_one_is_bit_identical(webui):
    from lib_w2sd.webui.common import W2SDFailure

    before = webui.generate(None)
    webui.settings(w2sd_on_error="fail")
    webui.observers.append(lambda call, p: (_ for _ in ()).throw(RuntimeError("boom")) if call.role else None)
    with pytest.raises(W2SDFailure, match="boom"):
        webui.generate(CFG1)
    webui.observers.clear()
    assert torch.equal(webui.generate(None).latents, before.latents)


@pytest.mark.parametrize("field, value, message", [
    ("weak_cfg", "high", "weak_cfg"), ("reflect_steps", 2.5, "reflect_steps"), ("strength", "x", "strength"),
])
def test_bad_fields_leave_the_image_plain_with_a_message_naming_the_field(webui, field, value, message):
    plain = webui.generate(None)
    result = webui.generate({**CFG1, field: value})
    assert torch.equal(result.latents, plain.latents) and set(result.roles()) == {None}
    assert message in result.infotext and "W2SD warning" in result.infotext


# -- one UNet batch for strong and weak ------------------------------------------------------------
# the same tests as on the other WebUIs' stand-ins (webui_patterns.joint_tests)
globals().update(joint_tests(hires=dict(enable_hr=True, hr_scale=1.5, hr_cfg=5.0)))


# -- GET /w2sd/v1/state (state_patterns.py), as each fork ------------------------------------------
globals().update(state_tests("a red cat <lora:style:0.8>", harness_checkpoint, patcher_weak_unet("old_forge_unet")))
