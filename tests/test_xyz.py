"""XYZ-plot axes: registered once on xyz_grid's own axis list, applied per grid cell on a
shallow copy of p (as xyz_grid does), read back by params_from_script over the UI's values."""

import types
from collections import namedtuple
from copy import copy

import pytest

from lib_w2sd.params import CUSTOM, PRESETS, ParamsError, W2SDParams

STAND_IN = "stubs"
ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])


class AxisOption:
    """scripts/xyz_grid.py AxisOption (A1111 1.10.1, 82a973c0): the constructor's signature."""

    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label, self.type, self.apply, self.format_value = label, type, apply, format_value
        self.confirm, self.cost, self.choices, self.prepare = confirm, cost, choices, prepare


@pytest.fixture()
def xyz_grid(stand_in, monkeypatch, tmp_path):
    from modules import scripts, sd_models

    module = types.ModuleType("xyz_grid.py")
    module.AxisOption = AxisOption
    module.axis_options = [AxisOption("Nothing", str, lambda p, x, xs: None)]
    data = [ScriptClassData(object, "/webui/scripts/xyz_grid.py", "/webui", module)]
    monkeypatch.setattr(scripts, "scripts_data", data, raising=False)
    (tmp_path / "base.safetensors").write_bytes(b"\0" * 16)
    sd_models.list_models(str(tmp_path))
    from lib_w2sd.webui.surface import xyz

    xyz.add_axes()
    return {opt.label: opt for opt in module.axis_options}


class P:
    cfg_scale = 6.0


def cell(axes, ui_list, *applied):
    """One grid cell: copy p, apply (label, value) pairs, read the params the script would see."""
    from lib_w2sd.webui.surface import ui

    p = P()
    pc = copy(p)
    for label, value in applied:
        axis = axes[f"[W2SD] {label}"]
        axis.apply(pc, value, [value])
    assert not hasattr(p, "w2sd_xyz")  # the original p is untouched
    return ui.params_from_script(pc, ui_list)


OFF = W2SDParams().to_list()
Z_ON = W2SDParams.from_dict({"enabled": True, "preset": "Z-Sampling (CFG gap)"}).to_list()


def test_axes_registered_once(xyz_grid):
    from lib_w2sd.webui.surface import xyz

    xyz.add_axes()
    labels = [label for label in xyz_grid if label.startswith("[W2SD]")]
    assert labels == [f"[W2SD] {x}" for x in (
        "On/off", "Preset", "Weak CFG", "Strong CFG", "Reflect steps (fraction)", "Reflect steps (count)",
        "Strength", "Weak checkpoint", "Weak LoRA multiplier", "Strong LoRA multiplier", "Weak ControlNet weight",
        "Strong ControlNet weight")]
    assert xyz_grid["[W2SD] Preset"].choices() == list(PRESETS)
    assert xyz_grid["[W2SD] Weak checkpoint"].choices() == ["None", "base.safetensors"]


def test_a_w2sd_axis_turns_w2sd_on(xyz_grid):
    params = cell(xyz_grid, OFF, ("Weak CFG", 2.0))
    assert params.enabled and params.weak_cfg == 2.0
    assert cell(xyz_grid, OFF) == W2SDParams()


@pytest.mark.parametrize("order", [0, 1])
def test_off_wins_in_any_order(xyz_grid, order):
    applied = [("On/off", "Off"), ("Strength", 0.5)]
    params = cell(xyz_grid, Z_ON, *(applied if order else applied[::-1]))
    assert not params.enabled and params.strength == 0.5
    assert cell(xyz_grid, OFF, ("On/off", "On")).enabled


def test_strong_cfg_without_cfg_difference_keeps_weak_at_generation_cfg(xyz_grid):
    params = cell(xyz_grid, OFF, ("Strong CFG", 9.0))
    assert (params.weak_cfg, params.strong_cfg) == (6.0, 9.0)
    assert cell(xyz_grid, Z_ON, ("Strong CFG", 9.0)).weak_cfg == 1.0
    assert cell(xyz_grid, Z_ON, ("Strong CFG", 0.0)).strong_cfg is None


def test_reflect_steps_axes_set_the_unit(xyz_grid):
    params = cell(xyz_grid, Z_ON, ("Reflect steps (count)", 7))
    assert (params.reflect_unit, params.reflect_steps, params.hires_reflect_steps) == ("steps", 7.0, 7.0)
    params = cell(xyz_grid, Z_ON, ("Reflect steps (fraction)", 0.25))
    assert (params.reflect_unit, params.reflect_steps) == ("fraction", 0.25)


@pytest.mark.parametrize("name", [n for n in PRESETS if n not in ("Checkpoint pair", "Prompt refinement")])
def test_preset_axis(xyz_grid, name):
    params = cell(xyz_grid, OFF, ("Preset", name))
    assert params == W2SDParams(enabled=True).with_preset(name)


def test_checkpoint_and_lora_axes(xyz_grid):
    assert cell(xyz_grid, OFF, ("Weak checkpoint", "base")).weak_checkpoint == "base"
    assert cell(xyz_grid, Z_ON, ("Weak checkpoint", "None")).weak_checkpoint == ""
    params = cell(xyz_grid, OFF, ("Weak LoRA multiplier", 0.0), ("Strong LoRA multiplier", 1.5))
    assert (params.weak_lora_multiplier, params.strong_lora_multiplier) == (0.0, 1.5)
    with pytest.raises(ParamsError) as error:  # a strong multiplier needs the LoRA difference
        cell(xyz_grid, OFF, ("Strong LoRA multiplier", 1.5))
    assert error.value.field == "strong_lora_multiplier"


def test_controlnet_axes(xyz_grid):
    params = cell(xyz_grid, Z_ON, ("Weak ControlNet weight", 0.0))
    assert params.kinds() == ["cfg", "controlnet"] and params.weak_controlnet_weight == 0.0
    params = cell(xyz_grid, OFF, ("Weak ControlNet weight", 0.5), ("Strong ControlNet weight", 1.5))
    assert (params.enabled, params.weak_controlnet_weight, params.strong_controlnet_weight) == (True, 0.5, 1.5)
    with pytest.raises(ParamsError) as error:  # a strong weight needs the ControlNet difference
        cell(xyz_grid, OFF, ("Strong ControlNet weight", 1.5))
    assert error.value.field == "strong_controlnet_weight"


@pytest.mark.parametrize("label, values, field", [
    ("Weak CFG", [1.0, 40.0], "weak_cfg"),
    ("Weak ControlNet weight", [0.0, 2.5], "weak_controlnet_weight"),
    ("Strength", [0.5, -1.0], "strength"),
    ("Reflect steps (fraction)", [0.5, 2.0], "reflect_steps"),
    ("Reflect steps (count)", [5, -2], "reflect_steps"),
    ("Weak checkpoint", ["None", "/etc/passwd"], "weak_checkpoint"),
    ("Preset", [CUSTOM, "Zigzag"], "preset"),
    ("On/off", ["On", "maybe"], "enabled"),
])
def test_confirm_stops_a_grid_with_bad_values(xyz_grid, label, values, field):
    confirm = xyz_grid[f"[W2SD] {label}"].confirm
    confirm(P(), values[:1])
    with pytest.raises(ParamsError) as error:
        confirm(P(), values)
    assert error.value.field == field


def test_no_xyz_script_no_axes(stand_in, monkeypatch):
    from modules import scripts

    from lib_w2sd.webui.surface import xyz

    monkeypatch.setattr(scripts, "scripts_data", [], raising=False)
    xyz.add_axes()  # nothing to extend, no error
