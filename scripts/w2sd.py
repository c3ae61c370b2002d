"""W2SD (Weak-to-Strong Diffusion with Reflection) as an always-on WebUI script.

Thin by design: the UI and argument parsing live in lib_w2sd.webui.surface, everything done around
sampling in lib_w2sd.webui.common, the WebUI-specific answers in lib_w2sd.webui.adapters.
API: alwayson_scripts: {"w2sd": {"args": [{"enabled": true, "weak_cfg": 1.0, ...}]}}.
"""

from modules import scripts

# Both WebUIs put the extension's folder on sys.path while they load its scripts.
from lib_w2sd.webui import common, detect_backend
from lib_w2sd.webui.surface import ui

ui.register_callbacks()


class W2SDScript(scripts.Script):
    def title(self):
        return "W2SD"

    def show(self, is_img2img):
        ui.watch_steps(self, is_img2img)  # before ui(): the WebUI applies such callbacks after show()
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        return ui.build_ui(self, is_img2img)

    def process(self, p, *args):
        backend = detect_backend()
        try:
            params, error = ui.params_from_script(p, args), None
        except Exception as e:  # noqa: BLE001 - a bad field must not stop the WebUI; common reports it
            params, error = None, e
        common.start(p, params, backend, error)

    def process_before_every_sampling(self, p, *args, **kwargs):
        common.before_sampling(p)

    def postprocess(self, p, processed, *args):
        common.finish(p)
