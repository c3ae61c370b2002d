"""The W2SD accordion on txt2img and img2img, its infotext paste, and reading the script's args.

One InputAccordion titled "W2SD (weak-to-strong reflection)" (its header checkbox is `enabled`):
  Preset                 fills the fields below; editing a field it set turns it to Custom
  Weak model differs by  CFG / Prompt / LoRA / Checkpoint / ControlNet, each showing only its own fields
  Reflection             steps (fraction or count: typing a whole number above 1 switches the
                         unit to steps), strength, hires-fix pass (txt2img only; hidden in img2img)
  Advanced (closed)      weak noise level, reflections per step
  status line            what generating with these values would say (a bad value, an empty
                         weak prompt, no difference chosen), as the values are entered
build_ui() returns the components in params.UI_FIELDS order (whatever the layout): that list is
also the API's positional form. Works on gradio 3.41 (A1111) and 4.x (Forge): only components and keywords
both have, and events both fire (`change` for programmatic updates such as a paste, `input` and
`select` for what only the user does). gradio 4.40 also fires `input` when an event's output
changes a field, so the `input` handlers look at the value they get and change nothing when it
already fits (a preset's own value, a unit that suits the steps).
"""

import gradio as gr

from ...params import (
    CUSTOM,
    INFOTEXT_KEYS,
    KIND_FIELDS,
    KIND_LABELS,
    LABELS,
    PRESET_KINDS,
    PRESETS,
    REFLECT_UNITS,
    UI_FIELDS,
    WEAK_SIGMAS,
    ParamsError,
    W2SDParams,
    is_step_count,
)
from . import settings, xyz

ADVANCED_LABEL = "Advanced"
# A new unit's starting value: a fraction's value means nothing as a count and back, so
# "fraction" starts at half the steps and "steps" at half the tab's sampling steps.
UNIT_FRACTION = 0.5
UNIT_STEP = {"fraction": 0.05, "steps": 1}
# The WebUI's own sliders the "steps" unit starts from (A1111 1.10 and Forge:
# modules/processing_scripts/sampler.py `<tab>_steps`, modules/ui.py `txt2img_hires_steps`,
# where 0 means the sampling steps), and what they hold when a layout has none.
STEPS_SLIDERS = {"steps": "{tab}_steps", "hires_steps": "{tab}_hires_steps"}
STEPS_DEFAULTS = {"steps": 20, "hires_steps": 0}
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
        status = gr.Markdown(value=status_text(*start.values()), elem_id=elem_id(is_img2img, "status"))

    _wire(comps, groups, status, _steps_states(script))
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
    with gr.Row(visible=not is_img2img):  # img2img has no hires pass; the fields stay for the list
        comps["hires"] = gr.Checkbox(**kw("hires"))
        comps["hires_reflect_steps"] = gr.Number(minimum=0, maximum=1000, step=step, visible=start["hires"],
                                                 **kw("hires_reflect_steps"))
    # Fields that need the paper to be understood, folded away (their defaults are right for most).
    with gr.Accordion(ADVANCED_LABEL, open=False, elem_id=elem_id(is_img2img, "advanced")):
        with gr.Row():
            comps["weak_sigma"] = gr.Radio(choices=list(WEAK_SIGMAS), **kw("weak_sigma"))
            comps["reflections"] = gr.Slider(minimum=1, maximum=4, step=1, **kw("reflections"))


# The fields whose changes can change what generating would say (the status line).
STATUS_INPUTS = ("preset", "weak_kinds", "weak_prompt", "weak_negative_prompt", "weak_checkpoint",
                 "reflect_steps", "reflect_unit", "hires", "hires_reflect_steps")


def _wire(comps, groups, status, steps) -> None:
    quiet = {"show_progress": "hidden", "queue": False}
    comps["weak_kinds"].change(fn=kind_visibility, inputs=[comps["weak_kinds"]], outputs=groups, **quiet)

    preset_outputs = [comps[name] for name in PRESET_OUTPUTS]
    comps["preset"].select(fn=_on_preset_selected, inputs=[], outputs=preset_outputs, **quiet)
    for name in PRESET_OUTPUTS:
        comps[name].input(fn=_label_after_edit(name), inputs=[comps["preset"], comps[name]], outputs=[comps["preset"]],
                          **quiet)

    comps["hires"].change(fn=shown, inputs=[comps["hires"]], outputs=[comps["hires_reflect_steps"]], **quiet)

    fields = [comps["reflect_steps"], comps["hires_reflect_steps"]]
    comps["reflect_unit"].input(fn=unit_values, inputs=[comps["reflect_unit"], *fields, steps["steps"],
                                                        steps["hires_steps"]], outputs=fields, **quiet)
    comps["reflect_unit"].change(fn=unit_steps, inputs=[comps["reflect_unit"]], outputs=fields, **quiet)
    comps["reflect_steps"].input(fn=unit_for_typed, inputs=[comps["reflect_steps"], comps["reflect_unit"]],
                                 outputs=[comps["reflect_unit"], comps["hires_reflect_steps"]], **quiet)

    every = [comps[name] for name in UI_FIELDS]
    for name in STATUS_INPUTS:
        comps[name].change(fn=status_text, inputs=every, outputs=[status], **quiet)


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
    def label(preset, value):
        values = preset_values(preset)
        return CUSTOM if name in values and value != values[name] else preset

    return label


def fits(value, unit: str) -> bool:
    """Whether a reflect-steps value means something in `unit`: a whole number of steps, or a
    fraction from 0 to 1."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return value >= 1 and value == int(value) if unit == "steps" else 0 <= value <= 1


def unit_values(unit: str, reflect_steps=None, hires_reflect_steps=None, sampling_steps=None, hires_steps=None
                ) -> list:
    """Reflect steps and Hires reflect steps for a newly chosen unit: each value that does not fit
    the unit starts at half of its pass's steps (the hires pass's own steps, or the sampling steps
    where those are 0), or at 0.5 for a fraction."""
    steps = int(sampling_steps or STEPS_DEFAULTS["steps"])
    starts = [UNIT_FRACTION] * 2
    if unit == "steps":
        starts = [max(1, round(n * UNIT_FRACTION)) for n in (steps, int(hires_steps or 0) or steps)]
    return [gr.update() if fits(value, unit) else gr.update(value=start)
            for value, start in zip((reflect_steps, hires_reflect_steps), starts)]


def typed_unit(value, unit: str) -> str:
    """The unit a typed Reflect steps value says: a whole number above 1 counts steps, a value
    strictly between 0 and 1 is a fraction; anything else leaves the unit as it is."""
    if is_step_count(value):
        return "steps"
    if isinstance(value, (int, float)) and 0 < value < 1:
        return "fraction"
    return unit


def unit_for_typed(value, unit: str) -> list:
    """The unit radio (and the hires steps, which follow into a new unit) after Reflect steps is typed."""
    new = typed_unit(value, unit)
    if new == unit:
        return [gr.update(), gr.update()]
    return [gr.update(value=new), gr.update(value=value)]


def unit_steps(unit: str) -> list:
    step = UNIT_STEP.get(unit, UNIT_STEP["fraction"])
    return [gr.update(step=step), gr.update(step=step)]


def status_text(*values) -> str:
    """What generating with these UI values (W2SD on) would say, for the status line: the bad
    field's message, else what the settings leave out, else nothing."""
    shown = dict(zip(UI_FIELDS, values))
    shown["enabled"] = True
    shown["reflect_unit"] = typed_unit(shown["reflect_steps"], shown["reflect_unit"])  # the radio follows
    try:
        params = W2SDParams.from_list([shown[name] for name in UI_FIELDS])
        check_checkpoint(params.weak_checkpoint)
    except ParamsError as error:
        return f"⚠️ {error}"
    return " ".join(f"ℹ️ {notice[0].upper()}{notice[1:]}." for notice in params.notices())


# -- the tab's sampling steps -------------------------------------------------------------------
def watch_steps(script, is_img2img: bool) -> None:
    """Ask the WebUI (from the script's show(): it applies on_after_component callbacks registered
    before ui()) for the tab's Sampling steps and Hires steps sliders; each feeds a gr.State that
    the unit radio reads, whether the slider is built before the W2SD accordion or after it."""
    tab = "img2img" if is_img2img else "txt2img"
    script.w2sd_steps = {"sliders": {}, "states": {}}

    def found(name):
        def callback(event):
            script.w2sd_steps["sliders"][name] = event.component
            if name in script.w2sd_steps["states"]:
                _follow(event.component, script.w2sd_steps["states"][name])

        return callback

    for name, pattern in STEPS_SLIDERS.items():
        if hasattr(script, "on_after_component"):  # A1111 >= 1.6 and Forge
            script.on_after_component(found(name), elem_id=pattern.format(tab=tab))


def _steps_states(script) -> dict:
    """One gr.State per STEPS_SLIDERS entry, following its slider where the WebUI has one."""
    link = getattr(script, "w2sd_steps", None) or {"sliders": {}, "states": {}}
    link["states"] = {name: gr.State(value=default) for name, default in STEPS_DEFAULTS.items()}
    for name, slider in link["sliders"].items():
        _follow(slider, link["states"][name])
    return link["states"]


def _follow(slider, state) -> None:
    state.value = slider.value
    slider.change(fn=lambda value: value, inputs=[slider], outputs=[state], show_progress="hidden", queue=False)


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
