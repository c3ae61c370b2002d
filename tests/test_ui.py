"""The W2SD accordion built with the real gradio (inside gr.Blocks) on the A1111 stand-in:
components in UI_FIELDS order with stable elem_ids and a hint each, presets that fill the
fields, infotext paste (UI and API paths) that restores every field, settings, and
params_from_script (list, dict, default preset, checkpoint names)."""

import os
import re

import gradio as gr
import pytest
from test_params import CASES, a1111_infotext_roundtrip

from lib_w2sd.params import CUSTOM, KIND_LABELS, PRESETS, UI_FIELDS, ParamsError, W2SDParams

STAND_IN = "stubs"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINTS = ["base-v1-5.safetensors", "dreamshaper_8.safetensors"]


def test_runs_on_the_gradio_dev_test_asks_for():
    """dev/test.sh runs this file on A1111's gradio 3 and again on Forge's gradio 4."""
    expected = os.environ.get("W2SD_EXPECT_GRADIO")
    if not expected:
        pytest.skip("W2SD_EXPECT_GRADIO not set (run through dev/test.sh)")
    assert gr.__version__.split(".")[0] == expected


@pytest.fixture(scope="module")
def webui(stand_in, tmp_path_factory):
    """The stand-in with two checkpoints listed (names only: nothing loads them)."""
    from modules import sd_models, shared

    directory = tmp_path_factory.mktemp("Stable-diffusion")
    for name in CHECKPOINTS:
        (directory / name).write_bytes(b"\0" * 16)
    sd_models.list_models(str(directory))
    sd_models.list_models = lambda directory=str(directory), _list=sd_models.list_models: _list(directory)
    yield shared
    shared.opts.data.pop("w2sd_default_preset", None)


class FakeScript:
    infotext_fields = None
    paste_field_names = None


def build(is_img2img=False):
    from lib_w2sd.webui.surface import ui

    script = FakeScript()
    with gr.Blocks() as blocks:
        components = ui.build_ui(script, is_img2img)
    return blocks, script, components


# -- the build ------------------------------------------------------------------------------------
@pytest.mark.parametrize("is_img2img", [False, True])
def test_builds_inside_blocks_with_every_field(webui, is_img2img):
    from lib_w2sd.webui.surface import ui

    blocks, script, components = build(is_img2img)
    assert len(components) == len(UI_FIELDS)
    tab = "img2img" if is_img2img else "txt2img"
    assert [c.elem_id for c in components] == [f"w2sd_{tab}_{name}-checkbox" if name == "enabled"
                                              else f"w2sd_{tab}_{name}" for name in UI_FIELDS]
    assert components[0].accordion.label == "W2SD (weak-to-strong reflection)"
    values = [c.value for c in components]
    assert values == ui.initial_params().to_list()
    assert W2SDParams.from_list(values) == W2SDParams()
    config = blocks.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
    assert {f"w2sd_{tab}_{n}" for n in ("cfg_group", "weak_checkpoint_refresh", "preset", "enabled")} <= ids


def test_types_of_components(webui):
    _, _, components = build()
    kinds = dict(zip(UI_FIELDS, (type(c).__name__ for c in components)))
    assert kinds["weak_kinds"] == "CheckboxGroup" and kinds["preset"] == "Dropdown"
    assert kinds["weak_cfg"] == "Slider" and kinds["reflect_steps"] == "Number" and kinds["weak_sigma"] == "Radio"
    comps = dict(zip(UI_FIELDS, components))
    assert comps["weak_kinds"].choices in (list(KIND_LABELS), [(k, k) for k in KIND_LABELS])
    assert "dreamshaper_8.safetensors" in str(comps["weak_checkpoint"].choices)


def test_default_preset_setting_fills_the_ui(webui):
    webui.opts.data["w2sd_default_preset"] = "Z-Sampling (CFG gap)"
    try:
        _, _, components = build()
        values = dict(zip(UI_FIELDS, (c.value for c in components)))
        assert values["preset"] == "Z-Sampling (CFG gap)" and values["weak_kinds"] == ["CFG"]
        assert values["enabled"] is False
        webui.opts.data["w2sd_default_preset"] = "no such preset"  # a stale config reads as Custom
        _, _, components = build()
        assert components[1].value == CUSTOM
    finally:
        webui.opts.data.pop("w2sd_default_preset")


def test_every_field_has_a_hint():
    text = open(os.path.join(ROOT, "javascript", "w2sd.js"), encoding="utf-8").read()
    block = text[text.index("FIELD_HINTS = {"):text.index("};", text.index("FIELD_HINTS = {"))]
    hinted = set(re.findall(r"^\s*(\w+): \"", block, re.M))
    assert set(UI_FIELDS) | {"weak_checkpoint_refresh"} <= hinted
    for name in list(PRESETS) + list(KIND_LABELS) + ["start", "next", "current", "fraction", "steps"]:
        assert f'"{name}": "' in text, name


# -- events ---------------------------------------------------------------------------------------
def test_kind_visibility():
    from lib_w2sd.webui.surface import ui

    updates = ui.kind_visibility(["LoRA", "CFG"])
    assert [u["visible"] for u in updates] == [True, False, True, False, False]
    assert [u["visible"] for u in ui.kind_visibility(None)] == [False] * 5


@pytest.mark.parametrize("name", list(PRESETS))
def test_choosing_a_preset_sets_the_fields_it_covers(webui, name):
    from lib_w2sd.webui.surface import ui

    start = dict(zip(UI_FIELDS, W2SDParams.from_dict({"weak_prompt": "raw", "weak_checkpoint": CHECKPOINTS[0],
                                                       "strength": 0.3}).to_list()))
    updates = ui.preset_updates(name)
    assert len(updates) == len(ui.PRESET_OUTPUTS)
    shown = dict(start)
    for field, update in zip(ui.PRESET_OUTPUTS, updates):
        if "value" in update:
            shown[field] = update["value"]
    shown["preset"] = name
    expected = W2SDParams.from_list(list(start.values())).with_preset(name)
    assert W2SDParams.from_list(list(shown.values())) == expected


def test_editing_a_preset_field_turns_the_label_to_custom():
    from lib_w2sd.webui.surface import ui

    z = "Z-Sampling (CFG gap)"
    assert ui._label_after_edit("weak_cfg")(z, 2.0) == CUSTOM
    assert ui._label_after_edit("weak_cfg")(z, 1.0) == z  # the preset's own value (gradio 4 fires `input` for it)
    assert ui._label_after_edit("weak_kinds")(z, ["CFG", "LoRA"]) == CUSTOM
    assert ui._label_after_edit("strength")(z, 0.5) == z  # Z-Sampling leaves strength alone
    assert ui._label_after_edit("weak_checkpoint")("Checkpoint pair", "x") == "Checkpoint pair"


def test_unit_change_starts_from_the_sampling_steps():
    from lib_w2sd.webui.surface import ui

    assert [u["value"] for u in ui.unit_values("steps", 0.5, 0.5, 4, 0)] == [2, 2]  # the issue: not 10 of 4
    assert [u["value"] for u in ui.unit_values("steps", 0.5, 0.25, 30, 10)] == [15, 5]
    assert [u["value"] for u in ui.unit_values("steps", 0.5, 0.5, 1, 0)] == [1, 1]
    assert [u["value"] for u in ui.unit_values("fraction", 12, 4, 30, 10)] == [0.5, 0.5]
    # A value that already fits the unit stays (gradio 4 fires `input` for a paste's unit too).
    assert ui.unit_values("steps", 12, 0.5, 30, 0) == [ui.gr.update(), ui.gr.update(value=15)]
    assert ui.unit_values("fraction", 0.3, 0.5) == [ui.gr.update(), ui.gr.update()]
    assert [u["step"] for u in ui.unit_steps("fraction")] == [0.05, 0.05]


def test_typed_whole_number_switches_the_unit():
    from lib_w2sd.webui.surface import ui

    assert [ui.typed_unit(v, "fraction") for v in (5, 5.0, 1, 0.5, 2.5, None)] == \
        ["steps", "steps", "fraction", "fraction", "fraction", "fraction"]
    assert [ui.typed_unit(v, "steps") for v in (0.25, 1, 12)] == ["fraction", "steps", "steps"]
    unit, hires = ui.unit_for_typed(5, "fraction")
    assert unit["value"] == "steps" and hires["value"] == 5  # the hires steps follow into the new unit
    assert ui.unit_for_typed(5, "steps") == [ui.gr.update(), ui.gr.update()]


def ui_values(**changes):
    values = dict(zip(UI_FIELDS, W2SDParams().to_list()))
    values.update(changes)
    return [values[name] for name in UI_FIELDS]


def test_status_line_says_what_generating_would(webui):
    from lib_w2sd.webui.surface import ui

    assert "nothing is reflected" in ui.status_text(*ui_values())
    assert ui.status_text(*ui_values(weak_kinds=["CFG"])) == ""
    assert "Weak prompt and Weak negative prompt are empty" in ui.status_text(*ui_values(weak_kinds=["Prompt"]))
    bad = ui.status_text(*ui_values(weak_kinds=["Checkpoint"], weak_checkpoint="typed.safetensors"))
    assert bad.startswith("⚠️ Weak checkpoint (weak_checkpoint) must be a checkpoint from the WebUI's list")
    assert ui.status_text(*ui_values(weak_kinds=["CFG"], reflect_steps=5)) == ""  # the radio switches to steps
    assert "Reflect steps (reflect_steps) must be" in ui.status_text(*ui_values(weak_kinds=["CFG"], reflect_steps=2.5))


@pytest.mark.parametrize("slider_first", [True, False])
def test_steps_unit_follows_the_tabs_sampling_steps_slider(webui, slider_first):
    """The WebUI's Sampling steps slider feeds the unit radio whether it is built before the W2SD
    accordion (the default layout) or after it (a reordered one)."""
    from modules import scripts

    script = scripts.load_script(os.path.join(ROOT, "scripts", "w2sd.py"))()
    runner = scripts.ScriptRunner([script])
    with gr.Blocks() as blocks:
        if slider_first:
            runner.after_component(gr.Slider(1, 150, value=24, elem_id="txt2img_steps"))
        script.ui(False)
        if not slider_first:
            runner.after_component(gr.Slider(1, 150, value=24, elem_id="txt2img_steps"))
    states = script.w2sd_steps["states"]
    assert states["steps"].value == 24 and states["hires_steps"].value == 0
    unit_event = next(d for d in _dependencies(blocks) if _fn_name(blocks, d) == "unit_values")
    follow = [d for d in _dependencies(blocks) if _fn_name(blocks, d) == "<lambda>"]
    assert len(follow) == 1 and states["steps"]._id in follow[0]["outputs"]
    assert states["steps"]._id in unit_event["inputs"]


def _dependencies(blocks):
    return blocks.get_config_file()["dependencies"]


def _fn_name(blocks, dependency):
    fns = list(_block_fns(blocks))
    index = _dependencies(blocks).index(dependency)
    return getattr(fns[index].fn, "__name__", "")


def test_expert_fields_are_in_a_closed_advanced_fold(webui):
    blocks, _, components = build()
    comps = dict(zip(UI_FIELDS, components))
    config = blocks.get_config_file()
    by_id = {c["id"]: c for c in config["components"]}
    advanced = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "w2sd_txt2img_advanced")
    assert advanced["props"]["open"] is False and advanced["props"]["label"] == "Advanced"

    def inside(node, target):
        return node["id"] == target or any(inside(child, target) for child in node.get("children", []))

    tree = _find(config["layout"], advanced["id"])
    for name in UI_FIELDS:
        assert inside(tree, comps[name]._id) == (name in ("weak_sigma", "reflections")), name
    assert by_id[advanced["id"]]


def _find(node, target):
    if node["id"] == target:
        return node
    for child in node.get("children", []):
        found = _find(child, target)
        if found:
            return found
    return None


# -- paste ----------------------------------------------------------------------------------------
def with_listed_checkpoint(params):
    if params.weak_checkpoint:
        return W2SDParams.from_dict({**params.to_dict(), "weak_checkpoint": CHECKPOINTS[1]})
    return params


@pytest.mark.parametrize("name", list(CASES))
def test_paste_restores_every_field(webui, name):
    params = with_listed_checkpoint(CASES[name])
    if not params.hires:
        params = W2SDParams.from_dict({**params.to_dict(), "hires_reflect_steps": params.reflect_steps})
    _, script, components = build()
    fields = a1111_infotext_roundtrip(params.to_infotext())
    pasted = [key(fields) for _, key in script.infotext_fields]
    assert pasted == params.to_list()
    # The API's `infotext` path casts each value to the type of the component's default value.
    cast = [type(c.value)(v) for c, v in zip(components, pasted)]
    assert W2SDParams.from_list(cast) == params


def test_paste_of_an_image_without_w2sd_turns_it_off(webui):
    _, script, _ = build()
    pasted = [key({"Steps": "20", "Prompt": "cat"}) for _, key in script.infotext_fields]
    assert pasted == [False] + [None] * (len(UI_FIELDS) - 1)


def test_paste_of_bad_keys_changes_nothing(webui, capsys):
    _, script, _ = build()
    pasted = [key({"W2SD": "CFG", "W2SD weak CFG": "lots"}) for _, key in script.infotext_fields]
    assert pasted == [None] * len(UI_FIELDS)
    assert "weak_cfg" in capsys.readouterr().out


def test_paste_maps_checkpoint_names_to_the_dropdown(webui):
    from lib_w2sd.webui.surface import ui

    fields = {"W2SD": "Checkpoint", "W2SD weak checkpoint": "dreamshaper_8"}
    assert ui.paste_value(fields, "weak_checkpoint") == "dreamshaper_8.safetensors"
    gone = {**fields, "W2SD weak checkpoint": "gone.safetensors"}
    assert ui.paste_value(gone, "weak_checkpoint") == "gone.safetensors"  # shown, and named when generating


def test_paste_keys_are_names_for_send_to_tab(webui):
    _, script, _ = build()
    keys = [key for _, key in script.infotext_fields]
    assert all(isinstance(k, str) and callable(k) for k in keys)
    assert script.paste_field_names == [str(k) for k in keys]
    assert len(set(keys)) == len(keys)
    assert keys[0] == "W2SD" and "W2SD weak CFG" in keys


# -- reading the args -----------------------------------------------------------------------------
class P:
    cfg_scale = 7.0


def test_params_from_script_reads_list_and_dict(webui):
    from lib_w2sd.webui.surface import ui

    params = CASES["preset Z-Sampling (CFG gap)"]
    assert ui.params_from_script(P(), params.to_list()) == params
    assert ui.params_from_script(P(), [params.to_dict(), False, "ignored"]) == params


def test_params_from_script_uses_the_default_preset_for_dicts(webui):
    from lib_w2sd.webui.surface import ui

    webui.opts.data["w2sd_default_preset"] = "Z-Sampling (CFG gap)"
    try:
        assert ui.params_from_script(P(), [{"enabled": True}]).weak_cfg == 1.0
    finally:
        webui.opts.data.pop("w2sd_default_preset")


def test_weak_checkpoint_must_be_listed(webui):
    from lib_w2sd.webui.surface import ui

    ok = ui.params_from_script(P(), [{"enabled": True, "weak_checkpoint": "base-v1-5"}])
    assert ok.weak_checkpoint == "base-v1-5"
    for bad in ["/etc/passwd", "../models/x.ckpt", "nope.safetensors"]:
        with pytest.raises(ParamsError) as error:
            ui.params_from_script(P(), [{"enabled": True, "weak_checkpoint": bad}])
        assert error.value.field == "weak_checkpoint"
        assert "'base-v1-5.safetensors', 'dreamshaper_8.safetensors'" in str(error.value)
    # Disabled: nothing is looked up.
    assert not ui.params_from_script(P(), [{"weak_checkpoint": "nope"}]).enabled


def test_refresh_lists_new_checkpoints(webui):
    from modules import sd_models

    from lib_w2sd.webui.surface import ui

    blocks, _, components = build()
    directory = os.path.dirname(next(iter(sd_models.checkpoints_list.values())).filename)
    open(os.path.join(directory, "new.safetensors"), "wb").close()
    try:
        refresh = next(d.fn for d in _block_fns(blocks) if getattr(d.fn, "__name__", "") == "refresh")
        update = refresh()
        assert "new.safetensors" in update["choices"]
        assert "new.safetensors" in ui.checkpoint_choices()
    finally:
        os.remove(os.path.join(directory, "new.safetensors"))
        sd_models.list_models()


def _block_fns(blocks):
    fns = blocks.fns
    return fns.values() if isinstance(fns, dict) else fns


# -- settings -------------------------------------------------------------------------------------
def test_settings_section(webui):
    from lib_w2sd.webui.surface import settings

    settings.on_ui_settings()
    for key, default in [("w2sd_default_preset", CUSTOM), ("w2sd_checkpoint_memory", "offload"),
                         ("w2sd_on_error", "fallback")]:
        info = webui.opts.data_labels[key]
        assert info.default == default and info.section == ("w2sd", "W2SD")
        assert default in info.component_args["choices"]
    assert settings.checkpoint_memory() == "offload"
    try:
        webui.opts.data["w2sd_on_error"] = "explode"
        assert settings.on_error() == "fallback"
        webui.opts.data["w2sd_on_error"] = "fail"
        assert settings.on_error() == "fail"
    finally:
        for key in settings.OPTIONS:
            webui.opts.data.pop(key, None)
            webui.opts.data_labels.pop(key, None)


def test_register_callbacks(webui):
    from modules import script_callbacks

    from lib_w2sd.webui.surface import ui

    before = {k: len(v) for k, v in script_callbacks.callback_map.items()}
    ui.register_callbacks()
    after = {k: len(v) for k, v in script_callbacks.callback_map.items()}
    for name in ("callbacks_ui_settings", "callbacks_before_ui", "callbacks_app_started"):
        assert after[name] == before[name] + 1


# -- install.py -----------------------------------------------------------------------------------
def test_install_py_installs_only_what_is_missing(monkeypatch):
    import runpy
    import sys
    import types

    calls = []
    launch = types.ModuleType("launch")
    launch.is_installed = lambda name: name != "tqdm"
    launch.run_pip = lambda command, desc=None: calls.append(command)
    monkeypatch.setitem(sys.modules, "launch", launch)
    runpy.run_path(os.path.join(ROOT, "install.py"))
    assert calls == ["install tqdm"]


def test_every_event_names_components_of_the_page(webui):
    """gradio's page fails with "Cannot read properties of undefined (reading 'props')" when an
    event names a component the page's config does not have; the W2SD UI's events never do."""
    import page  # tests/stubs/page.py: the stand-in is on sys.path

    demo, _ = page.build(os.path.join(ROOT, "scripts", "w2sd.py"))
    config = demo.get_config_file()
    ids = {c["id"] for c in config["components"]}
    named = {i for d in config["dependencies"] for i in d["inputs"] + d["outputs"]}
    assert named and named <= ids
