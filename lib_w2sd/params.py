"""Every user-facing W2SD setting: one dataclass, its validation, and its three wire forms.

The same names serve the API (`alwayson_scripts: {"w2sd": {"args": [{...}]}}`), the UI's
positional list (FIELD_NAMES order) and, through INFOTEXT_KEYS, the image's infotext.
A weak-model kind is active when its field is set: `weak_cfg` not None (CFG difference),
a non-empty `weak_prompt`/`weak_negative_prompt` (prompt), `weak_lora_multiplier` not None
(LoRA), a non-empty `weak_checkpoint` (another checkpoint); kinds combine freely.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .errors import W2SDError

REFLECT_UNITS = ("fraction", "steps")
WEAK_SIGMAS = ("next", "current")
CUSTOM = "Custom"


class ParamsError(W2SDError, ValueError):
    """A bad W2SD field; `field` names it, the message says the allowed values."""

    def __init__(self, field: str, allowed: str, value: Any):
        self.field = field
        super().__init__(f"W2SD field '{field}' must be {allowed}; got {value!r}")


@dataclass(frozen=True)
class W2SDParams:
    enabled: bool = False
    preset: str = CUSTOM
    weak_cfg: Optional[float] = None  # CFG of the weak call; None: the generation's (no CFG difference)
    strong_cfg: Optional[float] = None  # CFG of the reflection's strong call; None: the generation's
    weak_prompt: str = ""  # "" : the generation's prompt
    weak_negative_prompt: str = ""
    weak_lora_multiplier: Optional[float] = None  # prompt's LoRAs at this multiplier for the weak call
    strong_lora_multiplier: Optional[float] = None  # ... and for the reflection's strong call
    weak_checkpoint: str = ""  # a name from the WebUI's checkpoint list; "" : none
    reflect_steps: float = 0.5  # a fraction of the pass's steps, or a count (reflect_unit)
    reflect_unit: str = "fraction"
    strength: float = 1.0  # 0: plain sampling; 1: the paper's reflection
    weak_sigma: str = "next"  # noise level the weak model is told: 'next' (exact) or 'current' (official)
    reflections: int = 1  # reflections per reflected step
    hires: bool = False  # also reflect in the hires-fix second pass
    hires_reflect_steps: float = 0.5  # same unit as reflect_steps

    # -- what the settings mean -------------------------------------------------------------
    def kinds(self) -> List[str]:
        """The active weak-model differences, in a fixed order."""
        active = {
            "cfg": self.weak_cfg is not None,
            "prompt": bool(self.weak_prompt or self.weak_negative_prompt),
            "lora": self.weak_lora_multiplier is not None,
            "checkpoint": bool(self.weak_checkpoint),
        }
        return [k for k, on in active.items() if on]

    def has_difference(self) -> bool:
        """False when weak and strong are the same model: W2SD would then do (almost) nothing."""
        return bool(self.kinds()) or self.strong_cfg is not None or self.strong_lora_multiplier is not None

    def steps_for(self, n_steps: int, hires: bool = False) -> int:
        """How many of a pass's `n_steps` steps to reflect."""
        value = self.hires_reflect_steps if hires else self.reflect_steps
        if self.reflect_unit == "steps":
            return min(int(value), n_steps)
        return min(n_steps, int(math.floor(value * n_steps + 1e-9)))

    # -- wire forms ---------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "W2SDParams":
        """API form. Missing fields take the preset's value (if one is named), else the default."""
        if not isinstance(data, Mapping):
            raise ParamsError("args", "a dict of named fields or the UI's list", data)
        unknown = sorted(set(data) - set(FIELD_NAMES))
        if unknown:
            raise ParamsError(unknown[0], f"one of the known fields ({', '.join(FIELD_NAMES)})", data[unknown[0]])
        values = cls().to_dict()
        preset = data.get("preset", CUSTOM)
        _check("preset", preset)
        values.update(PRESETS[preset])
        values.update(data)
        for name, value in values.items():
            values[name] = _check(name, value)
        params = cls(**values)
        check_consistency(params)
        return params

    def to_list(self) -> List[Any]:
        """The UI's positional form, in FIELD_NAMES order."""
        return [getattr(self, name) for name in FIELD_NAMES]

    @classmethod
    def from_list(cls, values: Sequence[Any]) -> "W2SDParams":
        """The UI's positional form; a shorter list leaves the rest at their defaults."""
        if len(values) > len(FIELD_NAMES):
            raise ParamsError("args", f"at most {len(FIELD_NAMES)} positional values", list(values))
        return cls.from_dict(dict(zip(FIELD_NAMES, values)))

    @classmethod
    def from_script_args(cls, args: Sequence[Any]) -> "W2SDParams":
        """What a WebUI script receives: a dict of named fields in args[0] (API) or the list."""
        if len(args) >= 1 and isinstance(args[0], Mapping):
            if len(args) > 1:
                raise ParamsError("args", "a single dict of named fields, or the UI's list", list(args))
            return cls.from_dict(args[0])
        return cls.from_list(list(args))

    def to_infotext(self) -> Dict[str, Any]:
        """Infotext keys of an enabled run: every setting that changes the image."""
        if not self.enabled:
            return {}
        return {key: _format(name, getattr(self, name)) for name, key in INFOTEXT_KEYS.items()}

    @classmethod
    def from_infotext(cls, fields: Mapping[str, Any]) -> "W2SDParams":
        """Parse keys written by to_infotext; an image without them pastes with W2SD off."""
        if "W2SD" not in fields:
            return cls()
        data = {name: _parse(name, fields[key]) for name, key in INFOTEXT_KEYS.items() if key in fields}
        return cls.from_dict(data)


FIELD_NAMES: Tuple[str, ...] = tuple(f.name for f in dataclasses.fields(W2SDParams))

# The presets of the UI's dropdown; a preset sets these fields, anything named beside it wins.
PRESETS: Dict[str, Dict[str, Any]] = {
    CUSTOM: {},
    "Z-Sampling (CFG gap)": dict(
        weak_cfg=1.0, strong_cfg=None, weak_prompt="", weak_negative_prompt="",
        weak_lora_multiplier=None, strong_lora_multiplier=None, weak_checkpoint="",
    ),
    "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)": dict(
        weak_cfg=1.0, strong_cfg=5.5, weak_prompt="", weak_negative_prompt="",
        weak_lora_multiplier=-1.5, strong_lora_multiplier=1.5, weak_checkpoint="",
        reflect_unit="fraction", reflect_steps=1.0, weak_sigma="current", strength=1.0, reflections=1,
    ),
    "Checkpoint pair": dict(
        weak_cfg=None, strong_cfg=None, weak_prompt="", weak_negative_prompt="",
        weak_lora_multiplier=None, strong_lora_multiplier=None,
    ),
    "Prompt refinement": dict(
        weak_cfg=None, strong_cfg=None, weak_lora_multiplier=None, strong_lora_multiplier=None,
        weak_checkpoint="",
    ),
}

INFOTEXT_KEYS: Dict[str, str] = {
    "enabled": "W2SD",
    "preset": "W2SD preset",
    "weak_cfg": "W2SD weak CFG",
    "strong_cfg": "W2SD strong CFG",
    "weak_prompt": "W2SD weak prompt",
    "weak_negative_prompt": "W2SD weak negative prompt",
    "weak_lora_multiplier": "W2SD weak LoRA",
    "strong_lora_multiplier": "W2SD strong LoRA",
    "weak_checkpoint": "W2SD weak checkpoint",
    "reflect_steps": "W2SD steps",
    "reflect_unit": "W2SD steps unit",
    "strength": "W2SD strength",
    "weak_sigma": "W2SD weak sigma",
    "reflections": "W2SD reflections",
    "hires": "W2SD hires",
    "hires_reflect_steps": "W2SD hires steps",
}


# -- validation -------------------------------------------------------------------------------
def _number(lo: float, hi: float, integer: bool = False, optional: str = "") -> Callable[[str, Any], Any]:
    kind = "an integer" if integer else "a number"
    allowed = f"{kind} from {lo:g} to {hi:g}" + (f", or null ({optional})" if optional else "")

    def check(name, value):
        if value is None and optional:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not lo <= value <= hi or (integer and value != int(value)):
            raise ParamsError(name, allowed, value)
        return int(value) if integer else float(value)

    return check


def _choice(choices: Sequence[str]) -> Callable[[str, Any], Any]:
    def check(name, value):
        if value not in choices:
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


_CHECKS: Dict[str, Callable[[str, Any], Any]] = {
    "enabled": _boolean,
    "preset": _choice(list(PRESETS)),
    "weak_cfg": _number(0.0, 30.0, optional="the generation's CFG: no CFG difference"),
    "strong_cfg": _number(0.0, 30.0, optional="the generation's CFG"),
    "weak_prompt": _text,
    "weak_negative_prompt": _text,
    "weak_lora_multiplier": _number(-5.0, 5.0, optional="LoRA not part of the weak model"),
    "strong_lora_multiplier": _number(-5.0, 5.0, optional="the prompt's own multipliers"),
    "weak_checkpoint": _text,
    "reflect_steps": _number(0.0, 1000.0),
    "reflect_unit": _choice(REFLECT_UNITS),
    "strength": _number(0.0, 3.0),
    "weak_sigma": _choice(WEAK_SIGMAS),
    "reflections": _number(1, 4, integer=True),
    "hires": _boolean,
    "hires_reflect_steps": _number(0.0, 1000.0),
}


def _check(name: str, value: Any) -> Any:
    return _CHECKS[name](name, value)


def check_consistency(params: W2SDParams) -> None:
    """Cross-field rules: a fraction is at most 1, a count is whole."""
    for name in ("reflect_steps", "hires_reflect_steps"):
        value = getattr(params, name)
        if params.reflect_unit == "fraction" and value > 1:
            raise ParamsError(name, "a fraction from 0 to 1 when reflect_unit is 'fraction'", value)
        if params.reflect_unit == "steps" and value != int(value):
            raise ParamsError(name, "a whole number of steps when reflect_unit is 'steps'", value)


# -- infotext text forms ------------------------------------------------------------------------
def _format(name: str, value: Any) -> Any:
    if value is None:
        return "none"
    return value


def _parse(name: str, text: Any) -> Any:
    """Infotext values arrive as strings (or already parsed by the WebUI); undo _format."""
    if not isinstance(text, str):
        return text
    check = _CHECKS[name]
    if check is _text:
        return text
    if check is _boolean:
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if text.strip().lower() == "none":
        return None
    try:
        number = float(text)
    except ValueError:
        return text  # a choice, or garbage the check will name
    return int(number) if number.is_integer() and name == "reflections" else number
