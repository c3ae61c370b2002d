"""Stand-in for modules/scripts.py (A1111 v1.10.1, 82a973c0): Script (the hooks a script may
define), AlwaysVisible, the *Args objects, and ScriptRunner, which calls each always-on
script's hook with its slice of p.script_args and, like the real one, catches and only
reports any exception a hook raises (errors.report): a hook cannot stop a generation.

load_script(path) loads a script file the way script_loading.load_module does (a fresh module
per call) and returns its Script subclass; ScriptRunner(scripts) takes instances and gives each
its args_from/args_to in order, from `arg_counts` (the real one counts the ui() components).
Script.on_after_component and ScriptRunner.after_component as in the real file (scripts.py 321-328,
614-629, 945-950): callbacks a script registers by elem_id in show() run after that component is
built; in the WebUI gradio's patched component __init__ calls after_component (gradio_extensons.py),
on a stand-in page the page's builder does."""

import importlib.util
import inspect
import os
import sys

from modules import errors

AlwaysVisible = object()


class OnComponent:
    def __init__(self, component):
        self.component = component


class MaskBlendArgs:
    def __init__(self, current_latent, nmask, init_latent, mask, blended_latent, denoiser=None, sigma=None):
        self.current_latent = current_latent
        self.nmask = nmask
        self.init_latent = init_latent
        self.mask = mask
        self.blended_latent = blended_latent
        self.denoiser = denoiser
        self.is_final_blend = denoiser is None
        self.sigma = sigma


class PostSampleArgs:
    def __init__(self, samples):
        self.samples = samples


class PostprocessBatchListArgs:
    def __init__(self, images):
        self.images = images


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    infotext_fields = None
    paste_field_names = None
    on_after_component_elem_id = None

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def before_process_batch(self, p, *args, **kwargs):
        pass

    def process_before_every_sampling(self, p, *args, **kwargs):
        pass

    def process_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch(self, p, *args, **kwargs):
        pass

    def postprocess_batch_list(self, p, pp, *args, **kwargs):
        pass

    def on_mask_blend(self, p, mba, *args):
        pass

    def post_sample(self, p, ps, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def before_hr(self, p, *args):
        pass

    def elem_id(self, item_id):
        return item_id

    def on_after_component(self, callback, *, elem_id):
        if self.on_after_component_elem_id is None:
            self.on_after_component_elem_id = []
        self.on_after_component_elem_id.append((elem_id, callback))


def load_script(path):
    """load_scripts() for one file: the extension's folder (the parent of scripts/) is first on
    sys.path while script_loading.load_module runs it; returns its Script subclass."""
    name = "w2sd_script_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    syspath = sys.path
    sys.path = [os.path.dirname(os.path.dirname(os.path.abspath(path)))] + sys.path
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path = syspath
    return next(c for c in vars(module).values() if inspect.isclass(c) and issubclass(c, Script) and c is not Script)


class ScriptRunner:
    def __init__(self, scripts=(), arg_counts=None, is_img2img=False):
        self.alwayson_scripts = []
        self.on_after_component_elem_id = {}
        start = 0
        for i, script in enumerate(scripts):
            script.is_img2img, script.is_txt2img = is_img2img, not is_img2img
            if script.show(is_img2img) is AlwaysVisible:
                script.alwayson = True
                self.alwayson_scripts.append(script)
            count = arg_counts[i] if arg_counts else 1
            script.args_from, script.args_to = start, start + count
            start += count
        self.scripts = list(scripts)
        for script in self.scripts:  # apply_on_before_component_callbacks
            for elem_id, callback in script.on_after_component_elem_id or []:
                self.on_after_component_elem_id.setdefault(elem_id, []).append((callback, script))
            (script.on_after_component_elem_id or []).clear()

    def after_component(self, component, **kwargs):
        for callback, script in self.on_after_component_elem_id.get(component.elem_id, []):
            try:
                callback(OnComponent(component=component))
            except Exception:
                errors.report(f"Error running on_after_component: {script.filename}", exc_info=True)

    def _run(self, hook, p, *extra, **kwargs):
        for script in self.alwayson_scripts:
            if getattr(type(script), hook) is getattr(Script, hook):
                continue
            try:
                script_args = p.script_args[script.args_from:script.args_to]
                getattr(script, hook)(p, *extra, *script_args, **kwargs)
            except Exception:
                errors.report(f"Error running {hook}: {script.filename}", exc_info=True)

    def before_process(self, p):
        self._run("before_process", p)

    def process(self, p):
        self._run("process", p)

    def before_process_batch(self, p, **kwargs):
        self._run("before_process_batch", p, **kwargs)

    def process_before_every_sampling(self, p, **kwargs):
        self._run("process_before_every_sampling", p, **kwargs)

    def process_batch(self, p, **kwargs):
        self._run("process_batch", p, **kwargs)

    def before_hr(self, p):
        self._run("before_hr", p)

    def on_mask_blend(self, p, mba):
        self._run("on_mask_blend", p, mba)

    def post_sample(self, p, ps):
        self._run("post_sample", p, ps)

    def postprocess_batch(self, p, images, **kwargs):
        self._run("postprocess_batch", p, images=images, **kwargs)

    def postprocess_batch_list(self, p, pp, **kwargs):
        self._run("postprocess_batch_list", p, pp, **kwargs)

    def postprocess(self, p, processed):
        self._run("postprocess", p, processed)
