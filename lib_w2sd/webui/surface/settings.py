"""The "W2SD" section of the WebUI's Settings tab, and typed readers of its three keys.

Registered with `script_callbacks.on_ui_settings(on_ui_settings)` (see ui.register_callbacks).
Readers never fail: an unknown stored value (an old config, a hand-edited file) reads as the
default, so a bad setting cannot stop a generation.
"""

from __future__ import annotations

from ...params import CUSTOM, PRESETS

SECTION = ("w2sd", "W2SD")

DEFAULT_PRESET = "w2sd_default_preset"
CHECKPOINT_MEMORY = "w2sd_checkpoint_memory"
ON_ERROR = "w2sd_on_error"

MEMORY_POLICIES = ("gpu", "offload", "unload")
ERROR_POLICIES = ("fallback", "fail")

# key -> (default, allowed values, label, explanation shown under the setting)
OPTIONS = {
    DEFAULT_PRESET: (
        CUSTOM, tuple(PRESETS), "Default preset",
        ("Fills the W2SD fields when the UI loads, and the fields an API request leaves out "
        "(unless it names a preset itself)."),
    ),
    CHECKPOINT_MEMORY: (
        "offload", MEMORY_POLICIES, "Weak checkpoint memory",
        ("After a generation with a weak checkpoint: gpu = keep its UNet on the GPU (fastest "
        "repeats, most VRAM); offload = move it to CPU RAM (reloads quickly); unload = free it."),
    ),
    ON_ERROR: (
        "fallback", ERROR_POLICIES, "When W2SD cannot run",
        ("fallback = generate without W2SD and add a warning to the infotext; fail = stop the "
        "generation with the error."),
    ),
}


def on_ui_settings() -> None:
    import gradio as gr
    from modules import shared

    for key, (default, choices, label, info) in OPTIONS.items():
        component = gr.Dropdown if key == DEFAULT_PRESET else gr.Radio
        option = shared.OptionInfo(default, label, component, {"choices": list(choices)}, section=SECTION)
        shared.opts.add_option(key, option.info(info))


def read(key: str) -> str:
    """The stored value of one of OPTIONS, or its default when unset or not allowed."""
    default, choices = OPTIONS[key][:2]
    try:
        from modules import shared

        value = shared.opts.data.get(key, default)
    except (ImportError, AttributeError):  # outside a WebUI
        return default
    return value if value in choices else default


def values() -> dict:
    """Every W2SD setting as generations read it (GET /w2sd/v1/state shows them)."""
    return {key: read(key) for key in OPTIONS}


def default_preset() -> str:
    return read(DEFAULT_PRESET)


def checkpoint_memory() -> str:
    return read(CHECKPOINT_MEMORY)


def on_error() -> str:
    return read(ON_ERROR)
