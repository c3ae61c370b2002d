"""W2SDParams: the three wire forms (API dict, UI list, infotext) round-trip exactly for every
field and preset, and every bad value is refused with a message naming the field and the
allowed values."""

import importlib.util
import json
import os

import pytest

from lib_w2sd.params import (
    CUSTOM,
    FIELD_NAMES,
    INFOTEXT_KEYS,
    PRESET_KINDS,
    PRESET_NEEDS,
    PRESETS,
    UI_FIELDS,
    ParamsError,
    W2SDParams,
    check_field,
    field_name,
)

PAPER = "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)"

# One non-default, active value per field (each a settings set that validates).
VARIED = {
    "enabled": True,
    "preset": PAPER,
    "weak_cfg": 2.5,
    "strong_cfg": 9.0,
    "weak_prompt": 'a cat, "sitting": on a mat\nsecond line',
    "weak_negative_prompt": "blurry",
    "weak_lora_multiplier": 0.0,
    "strong_lora_multiplier": -0.7,
    "weak_checkpoint": "base, v1.5 [abcd1234].safetensors",
    "reflect_steps": 12.0,
    "reflect_unit": "steps",
    "strength": 0.35,
    "weak_sigma": "current",
    "reflections": 3,
    "hires": True,
    "hires_reflect_steps": 4.0,
    "weak_controlnet_weight": 0.0,
    "strong_controlnet_weight": 1.5,
}


def preset_params(name, **extra):
    needs = {"Checkpoint pair": {"weak_checkpoint": "base.safetensors"}, "Prompt refinement": {"weak_prompt": "cat"}}
    return W2SDParams.from_dict({"enabled": True, "preset": name, **needs.get(name, {}), **extra})


def examples():
    """Every preset; each field alone at a non-default value; everything at once; odd texts."""
    cases = {f"preset {name}": preset_params(name) for name in PRESETS}
    pairs = {"strong_cfg": "weak_cfg", "strong_lora_multiplier": "weak_lora_multiplier", "hires_reflect_steps": "hires",
             "strong_controlnet_weight": "weak_controlnet_weight"}
    for name, value in VARIED.items():
        data = {"enabled": True, name: value}
        if name in pairs:
            data[pairs[name]] = VARIED[pairs[name]]
        if name in ("reflect_steps", "hires_reflect_steps", "reflect_unit"):
            data.setdefault("reflect_steps", 12.0)
            data["reflect_unit"] = "steps"
        if name == "preset":
            data.update(weak_cfg=1.0)
        cases[f"field {name}"] = W2SDParams.from_dict(data)
    cases["all fields"] = W2SDParams.from_dict(VARIED)
    for i, text in enumerate(['"quoted"', " padded ", "x: y", "", "comma, here", '\\"', "日本語, é"]):
        cases[f"text {i}"] = W2SDParams.from_dict({"enabled": True, "weak_prompt": text, "weak_negative_prompt": "n"})
    cases["fraction 1/3"] = W2SDParams.from_dict({"enabled": True, "weak_cfg": 0.1, "reflect_steps": 1 / 3})
    return cases


CASES = examples()


def _a1111_infotext_utils():
    """The A1111 stand-in's infotext_utils (quote/unquote/re_param of A1111 1.10), loaded by path:
    it imports nothing of the WebUI, so the core tests need no stand-in on sys.path."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stubs", "modules", "infotext_utils.py")
    spec = importlib.util.spec_from_file_location("w2sd_test_infotext_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INFOTEXT_UTILS = _a1111_infotext_utils()


def a1111_infotext_roundtrip(fields):
    """The WebUI's own path: processing.create_infotext joins `key: quote(value)` and
    infotext_utils.parse_generation_parameters reads it back."""
    fields = {"Steps": 20, "Sampler": "Euler", "CFG scale": 7, **fields}
    line = ", ".join(f"{k}: {INFOTEXT_UTILS.quote(v)}" for k, v in fields.items())
    assert "\n" not in line, "an infotext's parameters must stay on one line"
    parsed = INFOTEXT_UTILS.parse_generation_parameters(line)
    return {k: v for k, v in parsed.items() if k not in ("Prompt", "Negative prompt")}


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_dict_round_trip_is_exact(name):
    params = CASES[name]
    assert W2SDParams.from_dict(params.to_dict()) == params
    assert W2SDParams.from_dict(json.loads(json.dumps(params.to_dict()))) == params


@pytest.mark.parametrize("name", list(CASES))
def test_ui_list_round_trip_is_exact(name):
    params = CASES[name]
    values = params.to_list()
    assert len(values) == len(UI_FIELDS)
    assert W2SDParams.from_list(values) == params
    assert W2SDParams.from_list(values).to_list() == values
    assert W2SDParams.from_script_args(values) == params
    assert W2SDParams.from_script_args([params.to_dict(), *values[1:]]) == params  # API dict + UI defaults


@pytest.mark.parametrize("name", list(CASES))
def test_infotext_round_trip_is_exact(name):
    params = CASES[name]
    if not params.hires:  # hires steps are not written (nor used) while hires is off
        params = W2SDParams.from_dict({**params.to_dict(), "hires_reflect_steps": params.reflect_steps})
    text = params.to_infotext()
    assert all(isinstance(v, str) for v in text.values())
    assert W2SDParams.from_infotext(text) == params
    assert W2SDParams.from_infotext(a1111_infotext_roundtrip(text)) == params


def test_every_field_reaches_every_form():
    params = CASES["all fields"]
    assert set(params.to_dict()) == set(FIELD_NAMES)
    written = params.to_infotext()
    assert set(written) == set(INFOTEXT_KEYS.values())
    assert written["W2SD"] == "CFG+Prompt+LoRA+Checkpoint+ControlNet"
    assert dict(zip(UI_FIELDS, params.to_list()))["weak_kinds"] == ["CFG", "Prompt", "LoRA", "Checkpoint", "ControlNet"]


def test_infotext_is_compact():
    text = W2SDParams.from_dict({"enabled": True, "preset": "Z-Sampling (CFG gap)"}).to_infotext()
    assert text == {"W2SD": "CFG", "W2SD preset": "Z-Sampling (CFG gap)", "W2SD weak CFG": "1",
                    "W2SD steps": "0.5", "W2SD strength": "1"}
    assert W2SDParams().to_infotext() == {}


def test_image_without_w2sd_reads_as_off():
    assert W2SDParams.from_infotext({"Steps": "20", "W2SD gap": "0.1"}) == W2SDParams()


def test_hires_steps_key_means_hires_on():
    params = W2SDParams.from_infotext({"W2SD": "CFG", "W2SD weak CFG": "1", "W2SD hires steps": "0.25"})
    assert params.hires and params.hires_reflect_steps == 0.25


# -- presets --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_fills_missing_fields_and_named_fields_win(name):
    params = preset_params(name)
    for field, value in PRESETS[name].items():
        assert getattr(params, field) == value
    assert params.preset == name
    if name != CUSTOM:
        ticked = dict(zip(UI_FIELDS, params.to_list()))["weak_kinds"]
        assert ticked == list(PRESET_KINDS[name])
    assert preset_params(name, strength=0.25).strength == 0.25


def test_paper_preset_is_the_official_setting():
    p = preset_params(PAPER)
    assert (p.weak_cfg, p.strong_cfg, p.weak_lora_multiplier, p.strong_lora_multiplier) == (1.0, 5.5, -1.5, 1.5)
    assert p.weak_sigma == "current" and p.steps_for(50) == 50


def test_default_preset_applies_to_dicts_that_name_none():
    assert W2SDParams.from_dict({}, default_preset="Z-Sampling (CFG gap)").weak_cfg == 1.0
    assert W2SDParams.from_dict({"preset": CUSTOM}, default_preset="Z-Sampling (CFG gap)").weak_cfg is None


def test_with_preset_and_overrides():
    base = W2SDParams.from_dict({"weak_cfg": 3.0, "strength": 0.5})
    z = base.with_preset("Z-Sampling (CFG gap)")
    assert (z.weak_cfg, z.strength, z.preset) == (1.0, 0.5, "Z-Sampling (CFG gap)")
    over = base.with_overrides({"preset": PAPER, "strength": 2.0})
    assert (over.strong_cfg, over.strength) == (5.5, 2.0)
    with pytest.raises(ParamsError) as error:
        base.with_overrides({"strenght": 1.0})
    assert error.value.field == "strenght"


# -- the UI list's own rules ----------------------------------------------------------------------
def test_unticked_kinds_ignore_their_hidden_fields():
    values = dict(zip(UI_FIELDS, W2SDParams().to_list()))
    values.update(enabled=True, weak_kinds=["LoRA"], weak_cfg=4.0, strong_cfg=7.0, weak_prompt="ignored",
                  weak_lora_multiplier=0.0, strong_lora_multiplier=0.0, weak_checkpoint="ignored")
    params = W2SDParams.from_list(list(values.values()))
    assert params.kinds() == ["lora"]
    assert (params.weak_cfg, params.strong_cfg, params.weak_prompt, params.weak_checkpoint) == (None, None, "", "")
    assert (params.weak_lora_multiplier, params.strong_lora_multiplier) == (0.0, None)  # 0 strong: prompt's own


def test_controlnet_kind():
    params = W2SDParams.from_dict({"enabled": True, "weak_cfg": 1.0, "weak_controlnet_weight": 0})
    assert params.kinds() == ["cfg", "controlnet"] and params.has_difference()
    written = params.to_infotext()
    assert (written["W2SD"], written["W2SD weak ControlNet"]) == ("CFG+ControlNet", "0")
    assert "W2SD strong ControlNet" not in written  # the units' own weights
    values = dict(zip(UI_FIELDS, W2SDParams().to_list()))
    values.update(enabled=True, weak_kinds=["ControlNet"])  # ticked, sliders untouched
    ticked = W2SDParams.from_list(list(values.values()))
    assert (ticked.weak_controlnet_weight, ticked.strong_controlnet_weight) == (0.0, None)


def test_positional_lists_of_the_fields_before_controlnet_keep_their_meaning():
    params = W2SDParams.from_dict({"enabled": True, "weak_cfg": 2.0, "hires": True, "hires_reflect_steps": 0.25})
    older = params.to_list()[:UI_FIELDS.index("weak_controlnet_weight")]
    assert older[-1] == 0.25 and W2SDParams.from_list(older) == params


def test_short_list_takes_ui_defaults():
    params = W2SDParams.from_list([True, CUSTOM, ["CFG"], 2.0])
    assert (params.enabled, params.weak_cfg, params.reflect_steps) == (True, 2.0, 0.5)
    assert W2SDParams.from_script_args([]) == W2SDParams()


def test_steps_for():
    assert W2SDParams(reflect_steps=0.5).steps_for(20) == 10
    assert W2SDParams(reflect_steps=1 / 3).steps_for(30) == 10
    assert W2SDParams(reflect_steps=1.0).steps_for(7) == 7
    assert W2SDParams(reflect_steps=12.0, reflect_unit="steps").steps_for(8) == 8
    assert W2SDParams(hires_reflect_steps=0.25).steps_for(8, hires=True) == 2


# -- validation messages --------------------------------------------------------------------------
BAD = [
    # (data, field, words the message must contain)
    ({"enabled": "yes"}, "enabled", ["true or false"]),
    ({"preset": "Z-sampling"}, "preset", ["'Z-Sampling (CFG gap)'", "'Custom'", "'Checkpoint pair'"]),
    ({"weak_cfg": 31}, "weak_cfg", ["from 0 to 30", "null means the generation's CFG"]),
    ({"weak_cfg": "7"}, "weak_cfg", ["a number from 0 to 30"]),
    ({"weak_cfg": float("nan")}, "weak_cfg", ["a number"]),
    ({"weak_cfg": True}, "weak_cfg", ["a number"]),
    ({"weak_cfg": 1.0, "strong_cfg": -1}, "strong_cfg", ["from 0 to 30", "null or 0 means the generation's CFG"]),
    ({"strong_cfg": 5.0}, "strong_cfg", ["null unless weak_cfg is set"]),
    ({"weak_prompt": 3}, "weak_prompt", ["a string"]),
    ({"weak_negative_prompt": ["x"]}, "weak_negative_prompt", ["a string"]),
    ({"weak_lora_multiplier": 6}, "weak_lora_multiplier", ["from -5 to 5", "prompt's own multipliers"]),
    ({"weak_lora_multiplier": 0, "strong_lora_multiplier": "1"}, "strong_lora_multiplier", ["from -5 to 5"]),
    ({"strong_lora_multiplier": 1.5}, "strong_lora_multiplier", ["null unless weak_lora_multiplier is set"]),
    ({"weak_checkpoint": 5}, "weak_checkpoint", ["a string"]),
    ({"weak_controlnet_weight": 2.5}, "weak_controlnet_weight", ["from 0 to 2", "null means the units' own weights"]),
    ({"weak_controlnet_weight": -0.5}, "weak_controlnet_weight", ["a number from 0 to 2"]),
    ({"weak_controlnet_weight": 0, "strong_controlnet_weight": 3}, "strong_controlnet_weight",
     ["from 0 to 2", "null or 0 means the units' own weights"]),
    ({"strong_controlnet_weight": 1.5}, "strong_controlnet_weight", ["null unless weak_controlnet_weight is set"]),
    ({"reflect_steps": -0.1}, "reflect_steps", ["from 0 to 1000"]),
    ({"reflect_steps": 2, "reflect_unit": "fraction"}, "reflect_steps",
     ["a fraction from 0 to 1 when reflect_unit is 'fraction'"]),
    ({"reflect_steps": 2.5}, "reflect_steps", ["a fraction from 0 to 1"]),  # no unit, and not a count
    ({"reflect_steps": 2.5, "reflect_unit": "steps"}, "reflect_steps", ["a whole number of steps"]),
    ({"reflect_unit": "percent"}, "reflect_unit", ["'fraction'", "'steps'"]),
    ({"strength": 3.5}, "strength", ["from 0 to 3"]),
    ({"weak_sigma": "previous"}, "weak_sigma", ["'next'", "'current'"]),
    ({"reflections": 1.5}, "reflections", ["an integer from 1 to 4"]),
    ({"reflections": 0}, "reflections", ["an integer from 1 to 4"]),
    ({"hires": 1}, "hires", ["true or false"]),
    ({"hires": True, "hires_reflect_steps": 1.5}, "hires_reflect_steps", ["a fraction from 0 to 1"]),
    ({"hires_reflect_steps": "a"}, "hires_reflect_steps", ["from 0 to 1000"]),
    ({"weak_cfgs": 1.0}, "weak_cfgs", ["one of the known fields", "weak_cfg", "hires_reflect_steps"]),
    ({"enabled": True, "preset": "Checkpoint pair"}, "weak_checkpoint",
     ["a checkpoint name", "with the preset 'Checkpoint pair'"]),
    ({"enabled": True, "preset": "Prompt refinement"}, "weak_prompt",
     ["a weak prompt or weak negative prompt", "with the preset 'Prompt refinement'"]),
]


@pytest.mark.parametrize("data, field, words", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_values_name_the_field_and_the_allowed_values(data, field, words):
    with pytest.raises(ParamsError) as error:
        W2SDParams.from_dict(data)
    assert error.value.field == field
    message = str(error.value)
    assert message.startswith(f"{field_name(field)} must be ")
    assert message.count(f"({field})") <= 1 and "W2SD" not in message  # named once; the caller says "W2SD"
    for word in words:
        assert word in message
    if field in data:
        value = data[field]
        shown = float(value) if isinstance(value, int) and not isinstance(value, bool) else value  # checked: 2 -> 2.0
        assert message.endswith((f"; got {value!r}", f"; got {shown!r}"))


def test_bad_shapes():
    shapes = [(["x"], "enabled"), ([True, CUSTOM, "CFG"], "weak_kinds"), ([True, CUSTOM, ["cfg"]], "weak_kinds"),
              ([False] * (len(UI_FIELDS) + 1), "args"), ("not a dict", "args")]
    for args, field in shapes:
        with pytest.raises(ParamsError) as error:
            W2SDParams.from_list(args) if isinstance(args, list) else W2SDParams.from_dict(args)
        assert error.value.field == field
    assert "'CFG', 'Prompt', 'LoRA', 'Checkpoint'" in str(pytest.raises(
        ParamsError, W2SDParams.from_list, [True, CUSTOM, ["cfg"]]).value)


def test_disabled_presets_need_nothing():
    assert W2SDParams.from_dict({"preset": "Checkpoint pair"}).kinds() == []


def test_check_field():
    assert check_field("strong_cfg", 0) is None
    assert check_field("reflections", 2.0) == 2
    with pytest.raises(ParamsError):
        check_field("nope", 1)


def test_preset_needs_are_documented_fields():
    assert all(field in FIELD_NAMES for field, _, _ in PRESET_NEEDS.values())


def test_messages_name_the_label_and_the_api_name_once():
    with pytest.raises(ParamsError) as error:
        W2SDParams.from_dict({"weak_sigma": "later"})
    assert str(error.value) == "Weak model sees (weak_sigma) must be one of 'start', 'next', 'current'; got 'later'"
    with pytest.raises(ParamsError) as error:
        W2SDParams.from_dict({"wek_cfg": 1})
    assert str(error.value).startswith("'wek_cfg' must be one of the known fields (enabled, preset, ")


# -- the unit a reflect-steps value says -------------------------------------------------------------
def test_unit_follows_the_value_when_not_given():
    """The issue's API request: a whole number above 1 without a unit counts steps."""
    five = W2SDParams.from_dict({"enabled": True, "weak_cfg": 1.0, "reflect_steps": 5})
    assert (five.reflect_unit, five.steps_for(20), five.hires_reflect_steps) == ("steps", 5, 5.0)
    assert W2SDParams.from_dict({"reflect_steps": 0.3}).reflect_unit == "fraction"
    one = W2SDParams.from_dict({"reflect_steps": 1})
    assert (one.reflect_unit, one.steps_for(20)) == ("fraction", 20)  # 1 is "every step"
    assert W2SDParams.from_dict({"preset": PAPER, "reflect_steps": 5}).reflect_unit == "steps"  # not the preset's
    hires = W2SDParams.from_dict({"hires": True, "reflect_steps": 6})
    assert (hires.steps_for(20), hires.steps_for(10, hires=True)) == (6, 6)


def test_a_given_unit_wins():
    assert W2SDParams.from_dict({"reflect_steps": 1, "reflect_unit": "steps"}).steps_for(20) == 1
    with pytest.raises(ParamsError) as error:
        W2SDParams.from_dict({"reflect_steps": 5, "reflect_unit": "fraction"})
    assert error.value.field == "reflect_steps"
    full = dict(zip(UI_FIELDS, W2SDParams().to_list()), reflect_steps=5)  # the UI list gives a unit
    with pytest.raises(ParamsError):
        W2SDParams.from_list(list(full.values()))


def test_unit_inferred_in_short_lists_infotexts_and_overrides():
    short = W2SDParams.from_list([True, CUSTOM, ["CFG"], 1.0, 0, "", "", 0, 0, "", 5])
    assert (short.reflect_unit, short.steps_for(20)) == ("steps", 5)
    pasted = W2SDParams.from_infotext({"W2SD": "CFG", "W2SD weak CFG": "1", "W2SD steps": "5"})
    assert (pasted.reflect_unit, pasted.reflect_steps) == ("steps", 5.0)
    assert W2SDParams.from_infotext({"W2SD": "CFG", "W2SD weak CFG": "1", "W2SD steps": "0.4"}).reflect_unit == \
        "fraction"
    over = W2SDParams().with_overrides({"reflect_steps": 7})
    assert (over.reflect_unit, over.hires_reflect_steps) == ("steps", 7.0)


# -- a ticked kind with empty fields ------------------------------------------------------------------
def ui_list(**shown):
    values = dict(zip(UI_FIELDS, W2SDParams().to_list()), enabled=True)
    values.update(shown)
    return [values[name] for name in UI_FIELDS]


@pytest.mark.parametrize("ticked", [["Prompt"], ["Checkpoint"], ["CFG", "Prompt"], ["Prompt", "Checkpoint"]])
def test_an_empty_tick_survives_every_form_and_is_named(ticked):
    params = W2SDParams.from_list(ui_list(weak_kinds=ticked))
    empty = tuple(k for k in ticked if k != "CFG")
    assert params.empty_kinds == empty and params.kinds() == (["cfg"] if "CFG" in ticked else [])
    assert dict(zip(UI_FIELDS, params.to_list()))["weak_kinds"] == ticked
    assert W2SDParams.from_list(params.to_list()) == params
    text = params.to_infotext()
    assert text["W2SD"] == "+".join(ticked)
    assert W2SDParams.from_infotext(text) == W2SDParams.from_infotext(a1111_infotext_roundtrip(text)) == params
    notices = params.notices()
    assert len(notices) == (len(empty) if "CFG" in ticked else 1)
    if "Prompt" in ticked:
        assert "Prompt is ticked but Weak prompt and Weak negative prompt are empty" in notices[0]
    if "CFG" in ticked:
        assert notices[0].endswith("so that difference is left out")
    else:
        assert notices[-1].endswith("so nothing is reflected") and not params.has_difference()


def test_no_difference_is_noticed():
    assert W2SDParams.from_dict({"enabled": True}).notices() == [
        "no weak-model difference is chosen (tick one under 'Weak model differs by' or pick a preset), "
        "so nothing is reflected"]
    assert W2SDParams.from_dict({"enabled": True, "weak_cfg": 1.0}).notices() == []
    assert W2SDParams.from_list(ui_list(weak_kinds=["Prompt"], weak_prompt="raw")).empty_kinds == ()
