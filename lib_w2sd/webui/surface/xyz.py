"""W2SD axes for the WebUI's built-in "X/Y/Z plot" script.

add_axes() runs on `on_before_ui`: it finds the loaded xyz_grid.py among `scripts.scripts_data`
and appends AxisOptions labelled "[W2SD] ...". An axis's apply function stores named-field
overrides on the cell's copy of p (`p.w2sd_xyz`, a new dict per cell: xyz_grid copies p
shallowly); params_from_script applies them over the UI's values. Any W2SD axis turns W2SD on,
except where the "[W2SD] On/off" axis says Off, whatever the order the axes are applied in.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ...params import PRESETS, ParamsError, W2SDParams, check_field

ATTR = "w2sd_xyz"
LABEL_PREFIX = "[W2SD]"
ON_OFF = ("On", "Off")


def set_override(p, name: str, value: Any, enable: bool = True) -> None:
    overrides = dict(getattr(p, ATTR, None) or {})
    overrides[name] = value
    if enable:
        overrides.setdefault("enabled", True)  # an explicit On/off axis value stays
    setattr(p, ATTR, overrides)


def apply_overrides(p, params: W2SDParams) -> W2SDParams:
    """params with the XYZ overrides stored on p. A strong CFG with no CFG difference in the UI
    keeps the weak call at the generation's CFG (what a null weak CFG means); a reflect-steps axis
    sets the unit, and the hires steps follow into a new unit (W2SDParams.with_overrides)."""
    overrides = dict(getattr(p, ATTR, None) or {})
    if not overrides:
        return params
    if overrides.get("strong_cfg") and params.weak_cfg is None and "weak_cfg" not in overrides:
        overrides["weak_cfg"] = float(p.cfg_scale)
    return params.with_overrides(overrides)


# -- the axes -----------------------------------------------------------------------------------
def _field_axis(name: str, extra: dict | None = None) -> Callable:
    def apply(p, x, xs):
        set_override(p, name, x)
        for key, value in (extra or {}).items():
            set_override(p, key, value)

    return apply


def _confirm(name: str) -> Callable:
    """Checks every value of an axis before the grid starts: a bad one stops it with the field's message."""
    def confirm(p, xs):
        for x in xs:
            check_field(name, x)

    return confirm


def _confirm_fraction(p, xs):
    for x in xs:
        if not 0 <= check_field("reflect_steps", x) <= 1:
            raise ParamsError("reflect_steps", "a fraction from 0 to 1 on this axis", x)


def _apply_on_off(p, x, xs):
    set_override(p, "enabled", x == ON_OFF[0], enable=False)


def _confirm_on_off(p, xs):
    for x in xs:
        if x not in ON_OFF:
            raise ParamsError("enabled", "On or Off", x)


def _checkpoint_value(x: str) -> str:
    return "" if x in ("", "None", "none") else x


def _apply_checkpoint(p, x, xs):
    set_override(p, "weak_checkpoint", _checkpoint_value(x))


def _confirm_checkpoint(p, xs):
    from .ui import check_checkpoint

    for x in xs:
        check_checkpoint(_checkpoint_value(x))


def _checkpoint_choices() -> list:
    from .ui import checkpoint_choices

    return ["None", *checkpoint_choices()[1:]]


def axis_options(AxisOption) -> list:
    """The W2SD axes, built with xyz_grid's own AxisOption class."""
    def axis(label, kind, apply, **kw):
        return AxisOption(f"{LABEL_PREFIX} {label}", kind, apply, **kw)

    return [
        axis("On/off", str, _apply_on_off, confirm=_confirm_on_off, choices=lambda: list(ON_OFF)),
        axis("Preset", str, _field_axis("preset"), confirm=_confirm("preset"), choices=lambda: list(PRESETS)),
        axis("Weak CFG", float, _field_axis("weak_cfg"), confirm=_confirm("weak_cfg")),
        axis("Strong CFG", float, _field_axis("strong_cfg"), confirm=_confirm("strong_cfg")),
        axis("Reflect steps (fraction)", float, _field_axis("reflect_steps", {"reflect_unit": "fraction"}),
             confirm=_confirm_fraction),
        axis("Reflect steps (count)", int, _field_axis("reflect_steps", {"reflect_unit": "steps"}),
             confirm=_confirm("reflect_steps")),
        axis("Strength", float, _field_axis("strength"), confirm=_confirm("strength")),
        axis("Weak checkpoint", str, _apply_checkpoint, confirm=_confirm_checkpoint, choices=_checkpoint_choices,
             cost=0.5),
        axis("Weak LoRA multiplier", float, _field_axis("weak_lora_multiplier"),
             confirm=_confirm("weak_lora_multiplier")),
        axis("Strong LoRA multiplier", float, _field_axis("strong_lora_multiplier"),
             confirm=_confirm("strong_lora_multiplier")),
        axis("Weak ControlNet weight", float, _field_axis("weak_controlnet_weight"),
             confirm=_confirm("weak_controlnet_weight")),
        axis("Strong ControlNet weight", float, _field_axis("strong_controlnet_weight"),
             confirm=_confirm("strong_controlnet_weight")),
    ]


def find_xyz_module():
    """The loaded xyz_grid.py module (a built-in script of both WebUIs), or None."""
    from modules import scripts

    for data in scripts.scripts_data:
        if os.path.basename(getattr(data, "path", "")) == "xyz_grid.py":
            return data.module
    return None


def add_axes() -> None:
    module = find_xyz_module()
    if module is None or any(opt.label.startswith(LABEL_PREFIX) for opt in module.axis_options):
        return
    module.axis_options.extend(axis_options(module.AxisOption))

