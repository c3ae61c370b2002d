"""The W2SD accordion on txt2img and img2img, its infotext paste, and reading the script's args.

One InputAccordion titled W2SD (its header checkbox is `enabled`):
  Preset                 fills the fields below; editing a field it set turns it to Custom
  Weak model differs by  CFG / Prompt / LoRA / Checkpoint / ControlNet, each showing only its own fields
  Reflection             steps (fraction or count), strength, weak noise level, reflections per
                         step, hires-fix pass (txt2img only; hidden in img2img)
build_ui() returns the components in params.UI_FIELDS order: that list is also the API's
positional form. Works on gradio 3.41 (A1111) and 4.x (Forge): only components and keywords
both have, and events both fire (`change` for programmatic updates such as a paste, `input` and
`select` for what only the user does).
"""

import gradio as gr

from ...params import (
    CUSTOM,
    INFOTEXT_KEYS,
    KIND_FIELDS,
    KIND_LABELS,
    PRESET_KINDS,
    PRESETS,
    REFLECT_UNITS,
    UI_FIELDS,
    WEAK_SIGMAS,
    ParamsError,
    W2SDParams,
)
from . import settings, xyz

LABELS = {
    "enabled": "W2SD",
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
# A new unit's starting value (a fraction's value means nothing as a count and back).
UNIT_DEFAULTS = {"fraction": 0.5, "steps": 10}
UNIT_STEP = {"fraction": 0.05, "steps": 1}
# Names under which the paste functions are listed (infotext keys where a field has one).
PASTE_NAMES = {name: INFOTEXT_KEYS.get(name, f"W2SD {name.replace('_', ' ')}") for name in UI_FIELDS}


def elem_id(is_img2img: bool, name: str) -> str:
    """`w2sd_txt2img_<field>` / `w2sd_img2img_<field>`: javascript/w2sd.js keys its hints on these."""
    return f"w2sd_{'img2img' if is_img2img else 'txt2img'}_{name}"


# -- building -----------------------------------------------------------------------------------
def build_ui(script, is_img2img: bool) -> list:
    """The accordion, inside the caller's gr.Blocks. Sets script.infotext_fields and
    script.paste_field_names; returns the components in UI_FIELDS order. No side effects beyond
    the components: the WebUI calls it again to learn the API's default args."""
    from modules.ui_components import InputAccordion

    start = dict(zip(UI_FIELDS, initial_params().to_list()))

    def kw(name, **extra):
        return dict(label=LABELS[name], value=start[name], elem_id=elem_id(is_img2img, name), **extra)

    comps = {}
    with InputAccordion(False, label=LABELS["enabled"], elem_id=elem_id(is_img2img, "enabled")) as enabled:
        comps["enabled"] = enabled
        comps["preset"] = gr.Dropdown(choices=list(PRESETS), **kw("preset"))
        comps["weak_kinds"] = gr.CheckboxGroup(choices=list(KIND_LABELS), **kw("weak_kinds"))
        groups = _weak_fields(comps, kw, start, is_img2img)
        _reflection_fields(comps, kw, start, is_img2img)

    _wire(comps, groups)
    script.infotext_fields = [(comps[name], PasteKey(name)) for name in UI_FIELDS]
    script.paste_field_names = [PASTE_NAMES[name] for name in UI_FIELDS]
    return [comps[name] for name in UI_FIELDS]


def _weak_fields(comps, kw, start, is_img2img) -> list:
    """One group per weak kind, visible while its kind is ticked; returned in KIND_LABELS order."""
    from modules import sd_models
    from modules.ui_common import create_refresh_button

    visible = {label: label in start["weak_kinds"] for label in KIND_LABELS}
    with gr.Row(visible=visible["CFG"], elem_id=elem_id(is_img2img, "cfg_group")) as cfg:
        comps["weak_cfg"] = gr.Slider(minimum=0.0, maximum=30.0, step=0.1, **kw("weak_cfg"))
        comps["strong_cfg"] = gr.Slider(minimum=0.0, maximum=30.0, step=0.1, **kw("strong_cfg"))
    with gr.Column(visible=visible["Prompt"], elem_id=elem_id(is_img2img, "prompt_group")) as prompt:
        comps["weak_prompt"] = gr.Textbox(lines=2, placeholder="empty: the generation's prompt", **kw("weak_prompt"))
        comps["weak_negative_prompt"] = gr.Textbox(
            lines=2, placeholder="empty: the generation's negative prompt", **kw("weak_negative_prompt"))
    with gr.Row(visible=visible["LoRA"], elem_id=elem_id(is_img2img, "lora_group")) as lora:
        comps["weak_lora_multiplier"] = gr.Slider(minimum=-5.0, maximum=5.0, step=0.05, **kw("weak_lora_multiplier"))
        comps["strong_lora_multiplier"] = gr.Slider(
            minimum=-5.0, maximum=5.0, step=0.05, **kw("strong_lora_multiplier"))
    with gr.Row(visible=visible["Checkpoint"], elem_id=elem_id(is_img2img, "checkpoint_group")) as checkpoint:
        comps["weak_checkpoint"] = gr.Dropdown(
            choices=checkpoint_choices(), allow_custom_value=True, **kw("weak_checkpoint"))
        create_refresh_button(comps["weak_checkpoint"], sd_models.list_models,
                              lambda: {"choices": checkpoint_choices()}, elem_id(is_img2img, "weak_checkpoint_refresh"))
    with gr.Row(visible=visible["ControlNet"], elem_id=elem_id(is_img2img, "controlnet_group")) as controlnet:
        for name in KIND_FIELDS["ControlNet"]:
            comps[name] = gr.Slider(minimum=0.0, maximum=2.0, step=0.05, **kw(name))
    return [cfg, prompt, lora, checkpoint, controlnet]


def _reflection_fields(comps, kw, start, is_img2img) -> None:
    step = UNIT_STEP[start["reflect_unit"]]
    with gr.Row():
        comps["reflect_steps"] = gr.Number(minimum=0, maximum=1000, step=step, **kw("reflect_steps"))
        comps["reflect_unit"] = gr.Radio(choices=list(REFLECT_UNITS), **kw("reflect_unit"))
        comps["strength"] = gr.Slider(minimum=0.0, maximum=3.0, step=0.05, **kw("strength"))
    with gr.Row():
        comps["weak_sigma"] = gr.Radio(choices=list(WEAK_SIGMAS), **kw("weak_sigma"))
        comps["reflections"] = gr.Slider(minimum=1, maximum=4, step=1, **kw("reflections"))
    with gr.Row(visible=not is_img2img):  # img2img has no hires pass; the fields stay for the list
        comps["hires"] = gr.Checkbox(**kw("hires"))
        comps["hires_reflect_steps"] = gr.Number(minimum=0, maximum=1000, step=step, visible=start["hires"],
                                                 **kw("hires_reflect_steps"))


def _wire(comps, groups) -> None:
    quiet = {"show_progress": "hidden", "queue": False}
    comps["weak_kinds"].change(fn=kind_visibility, inputs=[comps["weak_kinds"]], outputs=groups, **quiet)

    preset_outputs = [comps[name] for name in PRESET_OUTPUTS]
    comps["preset"].select(fn=_on_preset_selected, inputs=[], outputs=preset_outputs, **quiet)
    for name in PRESET_OUTPUTS:
        comps[name].input(fn=_label_after_edit(name), inputs=[comps["preset"]], outputs=[comps["preset"]], **quiet)

    comps["hires"].change(fn=shown, inputs=[comps["hires"]], outputs=[comps["hires_reflect_steps"]], **quiet)

    steps = [comps["reflect_steps"], comps["hires_reflect_steps"]]
    comps["reflect_unit"].input(fn=unit_values, inputs=[comps["reflect_unit"]], outputs=steps, **quiet)
    comps["reflect_unit"].change(fn=unit_steps, inputs=[comps["reflect_unit"]], outputs=steps, **quiet)


# -- what the events do (plain functions: tests call them) ----------------------------------------
# The fields a preset can set, with weak_kinds first: the outputs of a preset selection.
PRESET_OUTPUTS = ["weak_kinds"] + [name for name in UI_FIELDS if any(name in p for p in PRESETS.values())]


def initial_params() -> W2SDParams:
    """The UI's starting values: the default preset of the settings, W2SD off."""
    return W2SDParams().with_preset(settings.default_preset())


def kind_visibility(kinds) -> list:
    return [gr.update(visible=label in (kinds or [])) for label in KIND_LABELS]


def shown(visible) -> dict:
    return gr.update(visible=bool(visible))


def preset_values(name: str) -> dict:
    """UI values a preset sets (by field name), weak_kinds included; {} for Custom or unknown."""
    if name not in PRESETS or name == CUSTOM:
        return {}
    shown = dict(zip(UI_FIELDS, W2SDParams().with_preset(name).to_list()))
    values = {name_: shown[name_] for name_ in PRESETS[name]}
    values["weak_kinds"] = list(PRESET_KINDS[name])
    return values


def preset_updates(name: str) -> list:
    values = preset_values(name)
    return [gr.update(value=values[n]) if n in values else gr.update() for n in PRESET_OUTPUTS]


def _on_preset_selected(evt: gr.SelectData) -> list:
    return preset_updates(evt.value)


def covers(preset: str, name: str) -> bool:
    """Whether choosing `preset` sets the field `name` (so editing it departs from the preset)."""
    return name in preset_values(preset)


def _label_after_edit(name: str):
    def label(preset):
        return CUSTOM if covers(preset, name) else preset

    return label


def unit_values(unit: str) -> list:
    value = UNIT_DEFAULTS.get(unit, UNIT_DEFAULTS["fraction"])
    return [gr.update(value=value), gr.update(value=value)]


def unit_steps(unit: str) -> list:
    step = UNIT_STEP.get(unit, UNIT_STEP["fraction"])
    return [gr.update(step=step), gr.update(step=step)]


# -- checkpoints --------------------------------------------------------------------------------
def checkpoint_choices() -> list:
    """"" (none) and the WebUI's checkpoint list, as its own checkpoint dropdown shows it."""
    from modules import sd_models

    return ["", *sd_models.checkpoint_tiles()]


def checkpoint_choice(name: str):
    """The dropdown entry for a checkpoint name from an infotext or request (titles, short titles
    and hashes all match, as the WebUI's own lookup does); None if the WebUI has no such checkpoint."""
    from modules import sd_models

    info = sd_models.get_closet_checkpoint_match(name)
    if info is None:
        return None
    tiles = sd_models.checkpoint_tiles()
    forms = [getattr(info, attr, None) for attr in ("title", "name", "short_title", "model_name")]
    return next((form for form in forms if form in tiles), info.title)


def check_checkpoint(name: str) -> None:
    """A weak checkpoint must be one of the WebUI's own: never a path or an unknown name."""
    if name and checkpoint_choice(name) is None:
        tiles = checkpoint_choices()[1:]
        listed = ", ".join(repr(t) for t in tiles[:8]) + (f", ... ({len(tiles)} in all)" if len(tiles) > 8 else "")
        raise ParamsError("weak_checkpoint", f"a checkpoint from the WebUI's list ({listed or 'none found'})", name)


# -- paste ----------------------------------------------------------------------------------------
class PasteKey(str):
    """An infotext name that is also its field's paste function. The WebUIs call a callable key with
    the parsed infotext (PNG Info, the paste button, the API's `infotext`) and match plain-string
    keys by name when "Send to img2img" copies fields between tabs: this key does both."""

    field: str

    def __new__(cls, field: str):
        key = super().__new__(cls, PASTE_NAMES[field])
        key.field = field
        return key

    def __call__(self, infotext: dict):
        return paste_value(infotext, self.field)


def paste_value(infotext: dict, field: str):
    """The UI value of `field` for a parsed infotext; W2SD off for an image made without it;
    None (leave the field as it is) when the image's W2SD keys cannot be read."""
    if INFOTEXT_KEYS["enabled"] not in infotext:
        return False if field == "enabled" else None
    try:
        params = W2SDParams.from_infotext(infotext)
    except ParamsError as error:
        if field == "enabled":
            print(f"W2SD: cannot paste the image's W2SD settings: {error}")
        return None
    value = dict(zip(UI_FIELDS, params.to_list()))[field]
    if field == "weak_checkpoint" and value:
        value = checkpoint_choice(value) or value  # an unknown name stays visible; generating names it
    return value


# -- reading the args -----------------------------------------------------------------------------
def params_from_script(p, args) -> W2SDParams:
    """Validated settings of one generation: the UI's list or an API dict (missing fields from the
    default preset of the settings), then any XYZ-plot overrides stored on p. Raises ParamsError."""
    params = W2SDParams.from_script_args(args, default_preset=settings.default_preset())
    params = xyz.apply_overrides(p, params)
    if params.enabled:
        check_checkpoint(params.weak_checkpoint)
    return params


def register_callbacks() -> None:
    """Settings section, XYZ axes and API validation; call once from the script file at import
    (the WebUI clears callbacks before reloading scripts)."""
    from modules import script_callbacks

    from . import api

    script_callbacks.on_ui_settings(settings.on_ui_settings)
    script_callbacks.on_before_ui(xyz.add_axes)
    script_callbacks.on_app_started(api.on_app_started)
