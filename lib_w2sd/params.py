"""Every user-facing W2SD setting: one dataclass, its validation, and its three wire forms.

- The API's named dict (`alwayson_scripts: {"w2sd": {"args": [{...}]}}`) uses FIELD_NAMES.
  A weak-model kind is active when its field is set: `weak_cfg` not None (CFG difference),
  a non-empty `weak_prompt`/`weak_negative_prompt` (prompt), `weak_lora_multiplier` not None
  (LoRA), a non-empty `weak_checkpoint` (another checkpoint), `weak_controlnet_weight` not None
  (the ControlNet / IP-Adapter units scaled or off in the weak call); kinds combine freely.
- The UI's positional list uses UI_FIELDS: FIELD_NAMES with a `weak_kinds` checkbox group
  ("CFG", "Prompt", "LoRA", "Checkpoint", "ControlNet") deciding which weak fields count; hidden fields keep
  a value but are ignored, and 0 stands for null in the two `strong_*` fields.
- The infotext uses INFOTEXT_KEYS; keys at their documented absent value are left out.
Where a form gives `reflect_steps` without `reflect_unit` (an API dict, a short positional list,
an infotext, an X/Y/Z override), the value says the unit: a whole number above 1 counts steps,
anything else is a fraction. A given unit always wins.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import W2SDError

REFLECT_UNITS = ("fraction", "steps")
WEAK_SIGMAS = ("start", "next", "current")  # see lib_w2sd/reflection.py
CUSTOM = "Custom"
# The UI's names of the weak-model kinds (kinds() returns them lowercased).
KIND_LABELS = ("CFG", "Prompt", "LoRA", "Checkpoint", "ControlNet")
# The UI's label of each field: messages name a field by its label and its API name.
LABELS = {
    "enabled": "W2SD (weak-to-strong reflection)",
    "preset": "Preset",
    "weak_kinds": "Weak model differs by",
    "weak_cfg": "Weak CFG",
    "strong_cfg": "Strong CFG (0: the generation's)",
    "weak_prompt": "Weak prompt",
    "weak_negative_prompt": "Weak negative prompt",
    "weak_lora_multiplier": "Weak LoRA multiplier",
    "strong_lora_multiplier": "Strong LoRA multiplier (0: the prompt's own)",
    "weak_checkpoint": "Weak checkpoint",
    "weak_controlnet_weight": "Weak ControlNet weight (x each unit's; 0: without the units)",
    "strong_controlnet_weight": "Strong ControlNet weight (x each unit's; 0: their own)",
    "reflect_steps": "Reflect steps",
    "reflect_unit": "Steps unit",
    "strength": "Strength",
    "weak_sigma": "Weak model sees",
    "reflections": "Reflections per step",
    "hires": "Reflect in hires fix",
    "hires_reflect_steps": "Hires reflect steps",
}


class ParamsError(W2SDError, ValueError):
    """A bad W2SD field; `field` names it, the message (one sentence, the same under the image, in
    the infotext and in the API's 422 body) says the allowed values once."""

    def __init__(self, field: str, allowed: str, value: Any):
        self.field = field
        self.allowed = allowed
        super().__init__(f"{field_name(field)} must be {allowed}; got {value!r}")


def field_name(field: str) -> str:
    """How a message names a field: its UI label and its API name, e.g. "Reflect steps (reflect_steps)"."""
    label = "On/off" if field == "enabled" else LABELS.get(field)  # the header's label is the name W2SD
    return f"{label.split(' (')[0]} ({field})" if label else repr(field)


@dataclass(frozen=True)
class W2SDParams:
    enabled: bool = False
    preset: str = CUSTOM  # a label of where the values came from; the fields below are what runs
    weak_cfg: float | None = None  # CFG of the weak call; None: the generation's (no CFG difference)
    strong_cfg: float | None = None  # CFG of the reflection's strong call; None (or 0): the generation's
    weak_prompt: str = ""  # "" : the generation's prompt
    weak_negative_prompt: str = ""
    weak_lora_multiplier: float | None = None  # prompt's LoRAs at this multiplier for the weak call
    strong_lora_multiplier: float | None = None  # ... for the strong call; None (or 0): the prompt's own
    weak_checkpoint: str = ""  # a name from the WebUI's checkpoint list; "" : none
    reflect_steps: float = 0.5  # a fraction of the pass's steps, or a count (reflect_unit)
    reflect_unit: str = "fraction"
    strength: float = 1.0  # 0: plain sampling; 1: the paper's reflection
    weak_sigma: str = "start"  # where the weak model looks: 'start', 'next' or 'current' (official code)
    reflections: int = 1  # reflections per reflected step
    hires: bool = False  # also reflect in the hires-fix second pass
    hires_reflect_steps: float = 0.5  # same unit as reflect_steps
    # Last, so that positional lists of earlier versions keep their meaning.
    weak_controlnet_weight: float | None = None  # every active unit's weight times this in the weak call
    strong_controlnet_weight: float | None = None  # ... in the strong call; None (or 0): the units' own
    # Not a field of the wire forms: the UI kinds ticked with their fields empty ("Prompt" with no
    # weak prompt, "Checkpoint" with none chosen). They change nothing, but notices() names them
    # and the UI list and the infotext's "W2SD" key keep the tick (so a paste restores it).
    empty_kinds: tuple[str, ...] = ()

    # -- what the settings mean -------------------------------------------------------------
    def kinds(self) -> list[str]:
        """The active weak-model differences, in a fixed order: of cfg, prompt, lora, checkpoint,
        controlnet."""
        active = {
            "cfg": self.weak_cfg is not None,
            "prompt": bool(self.weak_prompt or self.weak_negative_prompt),
            "lora": self.weak_lora_multiplier is not None,
            "checkpoint": bool(self.weak_checkpoint),
            "controlnet": self.weak_controlnet_weight is not None,
        }
        return [k for k, on in active.items() if on]

    def has_difference(self) -> bool:
        """False when weak and strong are the same model: then there is nothing to reflect."""
        strong = (self.strong_cfg, self.strong_lora_multiplier, self.strong_controlnet_weight)
        return bool(self.kinds()) or any(value is not None for value in strong)

    def notices(self) -> list[str]:
        """What these (valid) settings leave out, one sentence each: a ticked kind with empty fields,
        and no difference at all (then nothing is reflected)."""
        reasons = [f"{label} is ticked but {EMPTY_KIND_REASONS[label]}" for label in self.empty_kinds]
        if self.has_difference():
            return [f"{reason}, so that difference is left out" for reason in reasons]
        reason = "; ".join(reasons) or (f"no weak-model difference is chosen (tick one under "
                                        f"{LABELS['weak_kinds']!r} or pick a preset)")
        return [f"{reason}, so nothing is reflected"]

    def steps_for(self, n_steps: int, hires: bool = False) -> int:
        """How many of a pass's `n_steps` steps to reflect."""
        value = self.hires_reflect_steps if hires else self.reflect_steps
        if self.reflect_unit == "steps":
            return min(int(value), n_steps)
        return min(n_steps, math.floor(value * n_steps + 1e-9))

    def with_preset(self, name: str) -> W2SDParams:
        """These settings with a preset's fields applied (and its label)."""
        _check("preset", name)
        return validated({**self.to_dict(), **PRESETS[name], "preset": name})

    def with_overrides(self, overrides: Mapping[str, Any]) -> W2SDParams:
        """Named fields replaced (e.g. by an XYZ-plot axis); a `preset` among them applies first."""
        _reject_unknown(overrides)
        values = self.to_dict()
        if "preset" in overrides:
            values.update(PRESETS[_check("preset", overrides["preset"])])
        return validated(_given(values, overrides), empty_kinds=() if "preset" in overrides else self.empty_kinds)

    # -- the API's named dict -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELD_NAMES}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_preset: str = CUSTOM) -> W2SDParams:
        """API form. Missing fields take the preset's value (the named one, else `default_preset`),
        then the defaults."""
        if not isinstance(data, Mapping):
            raise ParamsError("args", "a dict of named fields or the UI's list", data)
        _reject_unknown(data)
        preset = _check("preset", data.get("preset", default_preset))
        return validated(_given({**cls().to_dict(), **PRESETS[preset], "preset": preset}, data))

    # -- the UI's positional list ----------------------------------------------------------------
    def to_list(self) -> list[Any]:
        """The UI's positional form, in UI_FIELDS order; inactive fields show their idle value."""
        kinds = self.kinds()
        shown = {
            **self.to_dict(),
            "weak_kinds": [label for label in KIND_LABELS if label.lower() in kinds or label in self.empty_kinds],
        }
        for name, idle in UI_IDLE.items():
            if shown[name] is None:
                shown[name] = idle
        return [shown[name] for name in UI_FIELDS]

    @classmethod
    def from_list(cls, values: Sequence[Any]) -> W2SDParams:
        """The UI's positional form; a shorter list leaves the rest at the UI's defaults."""
        if len(values) > len(UI_FIELDS):
            raise ParamsError("args", f"at most {len(UI_FIELDS)} positional values ({', '.join(UI_FIELDS)})",
                              list(values))
        shown = _given(dict(zip(UI_FIELDS, cls().to_list())), dict(zip(UI_FIELDS, values)))
        kinds = _check_kinds(shown.pop("weak_kinds"))
        for label, names in KIND_FIELDS.items():
            if label not in kinds:
                shown.update({name: INACTIVE[name] for name in names})
        return validated(shown, empty_kinds=kinds)

    @classmethod
    def from_script_args(cls, args: Sequence[Any], default_preset: str = CUSTOM) -> W2SDParams:
        """What a WebUI script receives: a dict of named fields in args[0] (API), or the UI's list.
        After an API dict come the UI's default values of the other positions: they are ignored."""
        args = list(args)
        if args and isinstance(args[0], Mapping):
            return cls.from_dict(args[0], default_preset=default_preset)
        return cls.from_list(args)

    # -- infotext ----------------------------------------------------------------------------------
    def to_infotext(self) -> dict[str, str]:
        """Infotext keys of an enabled run: every setting that changes the image, each key left out
        where its value is the documented absent value (INFOTEXT_ABSENT)."""
        if not self.enabled:
            return {}
        text = {INFOTEXT_KEYS["enabled"]: "+".join(self.to_list()[UI_FIELDS.index("weak_kinds")]) or NO_KINDS}
        for name, key in INFOTEXT_KEYS.items():
            value = getattr(self, name)
            if name == "enabled" or (name in INFOTEXT_ABSENT and value == INFOTEXT_ABSENT[name]):
                continue
            if name == "hires_reflect_steps" and not self.hires:
                continue
            text[key] = _format(value)
        return text

    @classmethod
    def from_infotext(cls, fields: Mapping[str, Any]) -> W2SDParams:
        """Parse keys written by to_infotext; an image without them gives W2SD off."""
        if INFOTEXT_KEYS["enabled"] not in fields:
            return cls()
        given = {name: _parse(name, fields[key]) for name, key in INFOTEXT_KEYS.items()
                 if name != "enabled" and key in fields}
        values = _given({**cls().to_dict(), **INFOTEXT_ABSENT, "enabled": True}, given)
        values["hires"] = INFOTEXT_KEYS["hires_reflect_steps"] in fields
        if not values["hires"]:  # unused while hires is off; shown as the main pass's value
            values["hires_reflect_steps"] = values["reflect_steps"]
        ticked = str(fields[INFOTEXT_KEYS["enabled"]]).split("+")
        return validated(values, empty_kinds=[label for label in KIND_LABELS if label in ticked])


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(W2SDParams) if f.name != "empty_kinds")
UI_FIELDS: tuple[str, ...] = FIELD_NAMES[:2] + ("weak_kinds",) + FIELD_NAMES[2:]

# Which fields each UI kind shows; an unticked kind's fields are read as INACTIVE.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "CFG": ("weak_cfg", "strong_cfg"),
    "Prompt": ("weak_prompt", "weak_negative_prompt"),
    "LoRA": ("weak_lora_multiplier", "strong_lora_multiplier"),
    "Checkpoint": ("weak_checkpoint",),
    "ControlNet": ("weak_controlnet_weight", "strong_controlnet_weight"),
}
# Why a ticked kind can make no difference (W2SDParams.notices); only text fields can be empty.
EMPTY_KIND_REASONS = {
    "Prompt": f"{LABELS['weak_prompt']} and {LABELS['weak_negative_prompt']} are empty (the weak prompt "
              "would be the generation's own)",
    "Checkpoint": f"no {LABELS['weak_checkpoint']} is chosen",
}
INACTIVE: dict[str, Any] = {
    "weak_cfg": None, "strong_cfg": None, "weak_prompt": "", "weak_negative_prompt": "",
    "weak_lora_multiplier": None, "strong_lora_multiplier": None, "weak_checkpoint": "",
    "weak_controlnet_weight": None, "strong_controlnet_weight": None,
}
# What the UI shows for a null (a slider cannot be empty); 0 reads back as null in strong_*.
UI_IDLE: dict[str, float] = {
    "weak_cfg": 1.0, "strong_cfg": 0.0, "weak_lora_multiplier": 0.0, "strong_lora_multiplier": 0.0,
    "weak_controlnet_weight": 0.0, "strong_controlnet_weight": 0.0,
}

# The presets of the UI's dropdown; a preset sets these fields, anything named beside it wins.
PRESETS: dict[str, dict[str, Any]] = {
    CUSTOM: {},
    "Z-Sampling (CFG gap)": dict(INACTIVE, weak_cfg=1.0),
    "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)": dict(
        INACTIVE, weak_cfg=1.0, strong_cfg=5.5, weak_lora_multiplier=-1.5, strong_lora_multiplier=1.5,
        reflect_unit="fraction", reflect_steps=1.0, weak_sigma="current", strength=1.0, reflections=1,
    ),
    "Checkpoint pair": {k: v for k, v in INACTIVE.items() if k != "weak_checkpoint"},
    "Prompt refinement": {k: v for k, v in INACTIVE.items() if k not in KIND_FIELDS["Prompt"]},
}
# The UI kinds each preset ticks, and the field it leaves for the user to fill.
PRESET_KINDS: dict[str, tuple[str, ...]] = {
    "Z-Sampling (CFG gap)": ("CFG",),
    "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)": ("CFG", "LoRA"),
    "Checkpoint pair": ("Checkpoint",),
    "Prompt refinement": ("Prompt",),
}
PRESET_NEEDS: dict[str, tuple[str, str, str]] = {  # preset -> (field, kind, allowed values)
    "Checkpoint pair": ("weak_checkpoint", "checkpoint", "a checkpoint name from the WebUI's list"),
    "Prompt refinement": ("weak_prompt", "prompt", "a weak prompt or weak negative prompt (the raw prompt)"),
}

NO_KINDS = "none"  # the "W2SD" key's value when no kind is ticked
INFOTEXT_KEYS: dict[str, str] = {
    "enabled": "W2SD",  # its value lists the weak kinds, e.g. "CFG+LoRA"
    "preset": "W2SD preset",
    "weak_cfg": "W2SD weak CFG",
    "strong_cfg": "W2SD strong CFG",
    "weak_prompt": "W2SD weak prompt",
    "weak_negative_prompt": "W2SD weak negative prompt",
    "weak_lora_multiplier": "W2SD weak LoRA",
    "strong_lora_multiplier": "W2SD strong LoRA",
    "weak_checkpoint": "W2SD weak checkpoint",
    "weak_controlnet_weight": "W2SD weak ControlNet",
    "strong_controlnet_weight": "W2SD strong ControlNet",
    "reflect_steps": "W2SD steps",
    "reflect_unit": "W2SD steps unit",
    "strength": "W2SD strength",
    "weak_sigma": "W2SD weak sigma",
    "reflections": "W2SD reflections",
    "hires_reflect_steps": "W2SD hires steps",  # present exactly when hires is on
}
# A key missing from an infotext (of an image made with W2SD) means this value.
INFOTEXT_ABSENT: dict[str, Any] = {
    **INACTIVE, "preset": CUSTOM, "reflect_unit": "fraction", "weak_sigma": "start", "reflections": 1,
}


# -- validation -------------------------------------------------------------------------------
def _number(lo: float, hi: float, integer: bool = False, null: str = "", zero_is_null: bool = False
            ) -> Callable[[str, Any], Any]:
    kind = "an integer" if integer else "a number"
    allowed = f"{kind} from {lo:g} to {hi:g}"
    if null:
        allowed += f"; null{' or 0' if zero_is_null else ''} means {null}"

    def check(name, value):
        if value is None and null:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not lo <= value <= hi or (integer and value != int(value)):
            raise ParamsError(name, allowed, value)
        if zero_is_null and value == 0:
            return None
        return int(value) if integer else float(value)

    return check


def _choice(choices: Sequence[str]) -> Callable[[str, Any], Any]:
    def check(name, value):
        if not isinstance(value, str) or value not in choices:
            raise ParamsError(name, "one of " + ", ".join(repr(c) for c in choices), value)
        return value

    return check


def _boolean(name, value):
    if not isinstance(value, bool):
        raise ParamsError(name, "true or false", value)
    return value


def _text(name, value):
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ParamsError(name, "a string", value)
    return value


_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "enabled": _boolean,
    "preset": _choice(list(PRESETS)),
    "weak_cfg": _number(0.0, 30.0, null="the generation's CFG (no CFG difference)"),
    "strong_cfg": _number(0.0, 30.0, null="the generation's CFG", zero_is_null=True),
    "weak_prompt": _text,
    "weak_negative_prompt": _text,
    "weak_lora_multiplier": _number(-5.0, 5.0, null="the prompt's own multipliers (no LoRA difference)"),
    "strong_lora_multiplier": _number(-5.0, 5.0, null="the prompt's own multipliers", zero_is_null=True),
    "weak_checkpoint": _text,
    "reflect_steps": _number(0.0, 1000.0),
    "reflect_unit": _choice(REFLECT_UNITS),
    "strength": _number(0.0, 3.0),
    "weak_sigma": _choice(WEAK_SIGMAS),
    "reflections": _number(1, 4, integer=True),
    "hires": _boolean,
    "hires_reflect_steps": _number(0.0, 1000.0),
    "weak_controlnet_weight": _number(0.0, 2.0, null="the units' own weights (no ControlNet difference)"),
    "strong_controlnet_weight": _number(0.0, 2.0, null="the units' own weights", zero_is_null=True),
}


def check_field(name: str, value: Any) -> Any:
    """One field's value, checked and normalised alone (cross-field rules: check_consistency)."""
    if name not in _CHECKS:
        _reject_unknown({name: value})
    return _CHECKS[name](name, value)


_check = check_field


def _reject_unknown(data: Mapping[str, Any]) -> None:
    unknown = sorted(set(data) - set(FIELD_NAMES), key=str)
    if unknown:
        raise ParamsError(str(unknown[0]), f"one of the known fields ({', '.join(FIELD_NAMES)})",
                          data[unknown[0]])


def _check_kinds(value: Any) -> list[str]:
    allowed = "a list of weak kinds from " + ", ".join(repr(k) for k in KIND_LABELS)
    if not isinstance(value, (list, tuple)) or any(k not in KIND_LABELS for k in value):
        raise ParamsError("weak_kinds", allowed, value)
    return list(value)


def validated(values: Mapping[str, Any], empty_kinds: Sequence[str] = ()) -> W2SDParams:
    """Every field checked (and normalised: ints to floats, 0 to null where 0 means null).
    `empty_kinds`: the UI kinds ticked; those whose fields turn out empty are kept as such."""
    params = W2SDParams(**{name: _check(name, values[name]) for name in FIELD_NAMES})
    active = params.kinds()
    empty = tuple(k for k in EMPTY_KIND_REASONS if k in empty_kinds and k.lower() not in active)
    if empty:
        params = dataclasses.replace(params, empty_kinds=empty)
    check_consistency(params)
    return params


def is_step_count(value: Any) -> bool:
    """Whether a reflect-steps value given without a unit counts steps: a whole number above 1."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 1 and value == int(value))


def _given(values: dict, given: Mapping[str, Any]) -> dict:
    """values with the fields a request (or paste, or axis) gave. A reflect_steps given without a
    reflect_unit sets the unit its value says; when the unit changes and no hires steps are given,
    the hires steps take the same value (a fraction means nothing as a count and back)."""
    merged = {**values, **given}
    unit = given.get("reflect_unit")
    if unit is None and "reflect_steps" in given:
        unit = merged["reflect_unit"] = "steps" if is_step_count(given["reflect_steps"]) else "fraction"
    if unit != values.get("reflect_unit") and unit in REFLECT_UNITS and "hires_reflect_steps" not in given:
        merged["hires_reflect_steps"] = merged["reflect_steps"]
    return merged


def check_consistency(params: W2SDParams) -> None:
    """Cross-field rules: a fraction is at most 1, a count is whole (hires steps: only with hires on);
    a strong value needs its weak counterpart; a preset that needs a field has it (when enabled)."""
    for name in ("reflect_steps", "hires_reflect_steps") if params.hires else ("reflect_steps",):
        value = getattr(params, name)
        if params.reflect_unit == "fraction" and value > 1:
            raise ParamsError(name, "a fraction from 0 to 1 when reflect_unit is 'fraction'", value)
        if params.reflect_unit == "steps" and value != int(value):
            raise ParamsError(name, "a whole number of steps when reflect_unit is 'steps'", value)
    for strong, weak in (("strong_cfg", "weak_cfg"), ("strong_lora_multiplier", "weak_lora_multiplier"),
                         ("strong_controlnet_weight", "weak_controlnet_weight")):
        if getattr(params, strong) is not None and getattr(params, weak) is None:
            raise ParamsError(strong, f"null unless {weak} is set (it belongs to that difference)",
                              getattr(params, strong))
    if params.enabled and params.preset in PRESET_NEEDS:
        name, kind, allowed = PRESET_NEEDS[params.preset]
        if kind not in params.kinds():
            raise ParamsError(name, f"{allowed} with the preset {params.preset!r}", getattr(params, name))


# -- infotext text forms ------------------------------------------------------------------------
def _format(value: Any) -> str:
    """Shortest exact text: 1.0 -> "1", 0.25 -> "0.25"; text that A1111's infotext writer would
    not quote but its parser would alter (leading quote, outer spaces) is JSON-quoted here."""
    if isinstance(value, float):
        text = repr(value)
        return text.removesuffix(".0")
    if isinstance(value, str):
        plain = not any(c in value for c in ",:\n")
        if plain and (value.startswith('"') or value != value.strip()):
            return json.dumps(value, ensure_ascii=False)
        return value
    return str(value)


def _parse(name: str, text: Any) -> Any:
    """Infotext values arrive as strings (or already typed); undo _format. Garbage is passed on
    for the field's check to name."""
    if not isinstance(text, str):
        return text
    check = _CHECKS[name]
    if check is _text:
        return _unquote_own(text)
    if check is _boolean:
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        number = float(text)
    except ValueError:
        return text  # a choice
    return int(number) if name == "reflections" and number.is_integer() else number


def _unquote_own(text: str) -> str:
    """Undo _format's own JSON quoting when the text comes straight from to_infotext (the WebUI's
    infotext parser has already undone it: then decoding and re-formatting does not give it back)."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded = json.loads(text)
        except ValueError:
            return text
        if isinstance(decoded, str) and _format(decoded) == text:
            return decoded
    return text

