"""Stand-in for modules/script_callbacks.py (A1111 v1.10.1, 82a973c0): the callback lists and
their on_* registrars, remove_callbacks_for_function, and the parameter objects the CFG denoiser passes to them. Callbacks run
in registration order (the real one can reorder them by a user setting)."""

from collections import namedtuple

ScriptCallback = namedtuple("ScriptCallback", ["script", "callback", "name"])

_names = [
    "app_started", "model_loaded", "ui_tabs", "ui_settings", "cfg_denoiser", "cfg_denoised",
    "cfg_after_cfg", "before_component", "after_component", "infotext_pasted", "script_unloaded",
    "before_ui", "extra_noise",
]
callback_map = {f"callbacks_{name}": [] for name in _names}


def clear_callbacks():
    for callbacks in callback_map.values():
        callbacks.clear()


def add_callback(callbacks, fun, *, name=None, category="unknown", filename=None):
    callbacks.append(ScriptCallback(filename or "stub", fun, name))


def remove_callbacks_for_function(callback_func):
    for callback_list in callback_map.values():
        for callback_to_remove in [cb for cb in callback_list if cb.callback == callback_func]:
            callback_list.remove(callback_to_remove)


def _register(category):
    def on(callback, *, name=None):
        add_callback(callback_map[f"callbacks_{category}"], callback, name=name, category=category)

    on.__name__ = f"on_{category}"
    return on


on_app_started = _register("app_started")
on_model_loaded = _register("model_loaded")
on_ui_tabs = _register("ui_tabs")
on_ui_settings = _register("ui_settings")
on_cfg_denoiser = _register("cfg_denoiser")
on_cfg_denoised = _register("cfg_denoised")
on_cfg_after_cfg = _register("cfg_after_cfg")
on_before_component = _register("before_component")
on_after_component = _register("after_component")
on_infotext_pasted = _register("infotext_pasted")
on_script_unloaded = _register("script_unloaded")
on_before_ui = _register("before_ui")
on_extra_noise = _register("extra_noise")


def _run(category, *args):
    for c in callback_map[f"callbacks_{category}"]:
        c.callback(*args)


class CFGDenoiserParams:
    def __init__(self, x, image_cond, sigma, sampling_step, total_sampling_steps, text_cond, text_uncond, denoiser=None):
        self.x = x
        self.image_cond = image_cond
        self.sigma = sigma
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps
        self.text_cond = text_cond
        self.text_uncond = text_uncond
        self.denoiser = denoiser


class CFGDenoisedParams:
    def __init__(self, x, sampling_step, total_sampling_steps, inner_model):
        self.x = x
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps
        self.inner_model = inner_model


class AfterCFGCallbackParams:
    def __init__(self, x, sampling_step, total_sampling_steps):
        self.x = x
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps


class ExtraNoiseParams:
    def __init__(self, noise, x, xi):
        self.noise = noise
        self.x = x
        self.xi = xi


def cfg_denoiser_callback(params):
    _run("cfg_denoiser", params)


def cfg_denoised_callback(params):
    _run("cfg_denoised", params)


def cfg_after_cfg_callback(params):
    _run("cfg_after_cfg", params)


def extra_noise_callback(params):
    _run("extra_noise", params)


def app_started_callback(demo, app):
    _run("app_started", demo, app)


def ui_settings_callback():
    _run("ui_settings")


def before_ui_callback():
    _run("before_ui")


def infotext_pasted_callback(infotext, params):
    _run("infotext_pasted", infotext, params)
