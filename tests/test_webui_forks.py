"""The real scripts/w2sd.py on the layouts of Forge before 2.0 and Forge Neo (no adapter yet; reForge
and Forge Classic have one, tests/test_webui_old_forge.py):
it loads without error, imports nothing of an adapter or of a backend those WebUIs lack, and a
generation with W2SD enabled runs plain, bit-identical, with the one sentence naming the WebUI
under the image, in the infotext and on the console.

These tests run the A1111 stand-in's `modules` (tests/stubs) under a Forge 0.0.17 / Forge Neo root:
what the extension's surface and script use of `modules` is the same in the Forge forks as in A1111
1.10.1 (checked in reForge main 3b56b268 and Forge Classic 1f95d717:
modules/scripts.py Script, AlwaysVisible, scripts_data, process_before_every_sampling;
script_callbacks.on_ui_settings / on_before_ui / on_app_started; shared.OptionInfo (options.py
OptionInfo.info); ui_components.InputAccordion; ui_common.create_refresh_button;
infotext_utils.parse_generation_parameters; sd_models.checkpoint_tiles /
get_closet_checkpoint_match / list_models; the X/Y/Z script's AxisOption(label, type, apply,
format_value, confirm, cost, choices, prepare): reForge scripts/xyz_grid.py:215, Forge Classic
extensions-builtin/xyz/lib_xyz/classes.py:7, re-exported by its scripts/xyz_grid.py)."""

import sys

import pytest
from test_webui_detection import EXPECTED, LAYOUTS, make_tree
from test_xyz import AxisOption, ScriptClassData

STAND_IN = "stubs"
ADAPTERS = tuple(f"lib_w2sd.webui.adapters.{name}" for name in (
    "a1111", "forge", "family", "forge_family", "old_forge", "old_forge_lora", "old_forge_unet"))
ABSENT_THERE = ("backend", "ldm_patched", "modules_forge")


@pytest.fixture(params=["forge_first_backend", "forge_neo"])
def fork(request, a1111_box, tmp_path, monkeypatch):
    """The A1111 stand-in's modules under the root of `request.param`'s layout."""
    from lib_w2sd import webui

    root = make_tree(tmp_path, LAYOUTS[request.param])
    monkeypatch.setattr(webui, "webui_root", lambda: root)
    for name in ADAPTERS:  # imported by other tests' generations on the A1111 stand-in
        monkeypatch.delitem(sys.modules, name, raising=False)
    webui.reset_backend()
    a1111_box.reset()
    yield a1111_box, request.param
    webui.reset_backend()
    a1111_box.reset()


def test_the_extension_loads_there_without_error(fork, monkeypatch):
    """Script file, callbacks (settings, X/Y/Z axes, API middleware) and the accordion, as the
    WebUI runs them at start-up; nothing of an adapter or of the WebUI's backend is imported."""
    import types

    import gradio as gr
    import harness
    from fastapi import FastAPI
    from modules import errors, script_callbacks, scripts, shared

    xyz_grid = types.ModuleType("xyz_grid")
    xyz_grid.AxisOption, xyz_grid.axis_options = AxisOption, []
    monkeypatch.setattr(scripts, "scripts_data", [ScriptClassData(object, "/webui/scripts/xyz_grid.py", "/webui",
                                                                  xyz_grid)], raising=False)
    script = scripts.load_script(harness.SCRIPT)()
    script_callbacks.ui_settings_callback()
    script_callbacks.before_ui_callback()
    app = FastAPI()
    script_callbacks.app_started_callback(None, app)
    with gr.Blocks():
        components = script.ui(is_img2img=False)
    from lib_w2sd.params import UI_FIELDS

    assert len(components) == len(UI_FIELDS) and "w2sd_on_error" in shared.opts.data_labels
    assert [opt.label for opt in xyz_grid.axis_options][:1] == ["[W2SD] On/off"]
    assert any(m.cls.__name__ == "W2SDArgsMiddleware" for m in app.user_middleware)
    assert errors.reported == []
    assert not [name for name in (*ADAPTERS, *ABSENT_THERE) if name in sys.modules]


@pytest.mark.parametrize("w2sd", [{"enabled": True, "weak_cfg": 1.0},
                                  {"enabled": True, "preset": "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)"}])
def test_enabled_generates_plain_with_the_sentence(fork, w2sd, capsys):
    import torch
    from modules import errors

    from lib_w2sd.webui import detect_backend

    box, layout = fork
    plain = box.generate(None)
    result = box.generate(w2sd)
    sentence = "W2SD: " + detect_backend().unsupported
    assert torch.equal(result.latents, plain.latents)
    assert result.roles() == [None] * 6  # no extra calls: W2SD never touched the sampler
    assert list(result.p.comments) == [sentence]
    assert capsys.readouterr().err.count(sentence) == 1
    assert result.p.extra_generation_params["W2SD warning"] == sentence[len("W2SD: "):]
    assert "W2SD warning: " in result.infotext
    assert not [key for key in result.p.extra_generation_params if key.startswith("W2SD") and key != "W2SD warning"]
    assert detect_backend().webui.name == EXPECTED[layout].name
    assert errors.reported == []
    assert not [name for name in (*ADAPTERS, *ABSENT_THERE) if name in sys.modules]


def test_disabled_says_nothing(fork):
    box, _ = fork
    result = box.generate({"enabled": False, "weak_cfg": 1.0})
    assert not result.p.comments and "W2SD" not in result.infotext
