"""A WebUI in a box for tests: the A1111 stand-in with the real scripts/w2sd.py loaded, a
TinySD model, the Lora stand-in, the sd-webui-controlnet stand-in (controlnet_ext, loaded only for
generations that pass `controlnet=`), and `generate()` running process_images like the API does.

`WebUI.reset()` puts every global back to a fresh server's state between tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, List

import torch

import networks
import tiny_sd
from controlnet_ext import controlnet, hook, plugable_ipadapter
from webui_patterns import unet_batches
from modules import errors, extra_networks, processing, script_callbacks, scripts, sd_models, shared

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "w2sd.py")
DEFAULTS = dict(prompt="a red cat", negative_prompt="blurry", steps=6, seed=1, cfg_scale=7.0, width=32, height=32)


@dataclass
class Call:
    """One CFG denoiser call as the cfg_denoiser callback saw it."""

    role: Any  # None (the sampler's own call), "weak" or "strong"
    step: int  # den.step: the index prompt editing used
    text_cond: Any  # a tensor, or SDXL's dict {crossattn, vector}
    lora: tuple  # unet multipliers of the loaded LoRAs
    unet_index: int = 0  # UNet calls made before this call
    model: Any = None  # shared.sd_model during the call (the refiner after the switch)
    text_uncond: Any = None
    hires: bool = False  # a call of the hires pass


@dataclass
class Result:
    processed: Any
    p: Any
    calls: List[Call] = field(default_factory=list)
    unet_calls: List[int] = field(default_factory=list)
    control: List[dict] = field(default_factory=list)  # per hooked UNet call: {unit: weights used}

    @property
    def latents(self):
        return torch.stack(self.processed.latents)

    @property
    def infotext(self) -> str:
        return self.processed.infotexts[0]

    def roles(self):
        return [c.role for c in self.calls]

    def batches(self):
        """(role, rows the model's UNet got) per UNet call (webui_patterns.unet_batches; the weak
        checkpoint's UNet counts apart)."""
        return unet_batches(self.calls, self.unet_calls)


class WebUI:
    def __init__(self):
        self.model = tiny_sd.TinySD()
        self.script = scripts.load_script(SCRIPT)()
        self.controlnet = controlnet.Script()
        self.observers = []  # functions(call: Call, p) run inside every cfg_denoiser callback
        self.extra_scripts = []
        self.reset()

    def reset(self):
        shared.opts.data.clear()
        shared.state.begin()
        shared.sd_model = self.model
        self.model.model.diffusion_model = self.model.unet  # in case a test failed mid-swap
        self.model.sd_checkpoint_info = tiny_sd.CheckpointInfo()
        sd_models.loadable.clear()
        self.model.unet.calls.clear()
        self.model.cond_stage_model.encoded.clear()
        processing.StableDiffusionProcessing.cached_c = [None, None]
        processing.StableDiffusionProcessing.cached_uc = [None, None]
        processing.StableDiffusionProcessingTxt2Img.cached_hr_c = [None, None]
        processing.StableDiffusionProcessingTxt2Img.cached_hr_uc = [None, None]
        networks.loaded_networks.clear()
        networks.available_networks.clear()
        networks.switch_log.clear()
        extra_networks.extra_network_registry.clear()
        extra_networks.register_extra_network(networks.ExtraNetworkLora())
        sd_models.checkpoints_list.clear()
        sd_models.checkpoint_aliases.clear()
        errors.reported.clear()
        script_callbacks.clear_callbacks()
        script_callbacks.on_cfg_denoiser(self._observe)
        self.observers.clear()
        self.extra_scripts.clear()
        from lib_w2sd.webui.adapters import checkpoint

        checkpoint.cache.clear()
        self._calls = []
        self._unet = self.model.unet
        self._reset_controlnet()

    def _reset_controlnet(self):
        if self.controlnet.latest_network is not None:  # a test failed before postprocess
            self.controlnet.latest_network.restore()
            self.controlnet.latest_network = None
        plugable_ipadapter.clear_all_ip_adapter()
        self._clear_control_logs()

    def _clear_control_logs(self):
        hook.CALLS.clear()
        for model, _ in self.controlnet.models.values():
            getattr(model, "calls", []).clear()

    def _observe(self, params):
        den = params.denoiser
        p = den.p
        nets = tuple(net.unet_multiplier for net in networks.loaded_networks)
        # the model's own UNet (a weak checkpoint's call runs with another one swapped in)
        call = Call(getattr(p, "w2sd_extra_call", None), den.step, params.text_cond, nets, len(self._unet.calls),
                    shared.sd_model, params.text_uncond, bool(p.is_hr_pass))
        self._calls.append(call)
        for observe in self.observers:
            observe(call, p)

    def settings(self, **values):
        shared.opts.data.update(values)

    def generate(self, w2sd=None, img2img=False, args=None, controlnet=None, **kwargs) -> Result:
        """One generation; `w2sd` is the API's named dict (None: W2SD off), `args` the raw list;
        `controlnet` the ControlNet units (a list, maybe empty; None: the extension not installed)."""
        shared.state.begin()
        self._unet = shared.sd_model.unet  # the loaded model's (a test may load another than the box's)
        self._unet.calls.clear()
        self._calls = []
        self._clear_control_logs()
        options = dict(DEFAULTS, **kwargs)
        cls = processing.StableDiffusionProcessingImg2Img if img2img else processing.StableDiffusionProcessingTxt2Img
        if img2img:
            h, w = options["height"], options["width"]
            options.setdefault("init_images", [torch.linspace(0, 1, 3 * h * w).reshape(3, h, w)])
        p = cls(**options)
        if args is None:
            args = [dict(w2sd or {"enabled": False})] + [None] * len(self.extra_scripts)
        extension = [] if controlnet is None else [self.controlnet]  # "sd-webui-controlnet" sorts first
        counts = [1] * len(extension) + [len(args) - len(self.extra_scripts)] + [1] * len(self.extra_scripts)
        p.scripts = scripts.ScriptRunner([*extension, self.script, *self.extra_scripts], arg_counts=counts,
                                         is_img2img=img2img)  # W2SD gets the rest of the list
        p.script_args = [controlnet] * len(extension) + list(args)
        processed = processing.process_images(p)
        return Result(processed, p, list(self._calls), list(self._unet.calls), list(hook.CALLS))

    def control_calls(self):
        """Evaluations of the stand-in's ControlNet model (batch sizes)."""
        return self.controlnet.models["tiny-controlnet"][0].calls

    def add_lora(self, name="style", seed=3, scale=0.3):
        return networks.make_network(name, self.model.unet, seed=seed, scale=scale)

    def register_checkpoints(self, directory):
        sd_models.list_models(str(directory))

    def add_refiner(self, directory, model=None, seed=7):
        """base.safetensors (the loaded model, `model` or the box's) and refiner.safetensors (another
        TinySD of the same kind) in the WebUI's list, base selected, each loadable as its model (as
        the real WebUI's cache of loaded models hands them back). Returns the refiner's model."""
        base = model or self.model
        refiner = tiny_sd.TinySD(seed=seed, sdxl=base.is_sdxl)
        write_checkpoint(directory / "base.safetensors", base.unet)
        write_checkpoint(directory / "refiner.safetensors", refiner.unet)
        self.register_checkpoints(directory)
        for name, loaded in (("base.safetensors", base), ("refiner.safetensors", refiner)):
            info = sd_models.checkpoint_aliases[name]
            sd_models.loadable[info.filename] = loaded
            loaded.sd_checkpoint_info = info
        shared.opts.data["sd_model_checkpoint"] = "base.safetensors"
        shared.sd_model = base
        return refiner


def write_checkpoint(path, unet: torch.nn.Module, extra_keys=True):
    """A checkpoint file as the WebUI's list holds them: the UNet under model.diffusion_model.*,
    plus (by default) some text-encoder and VAE tensors W2SD must not load."""
    from safetensors.torch import save_file

    tensors = {"model.diffusion_model." + k: v.contiguous() for k, v in unet.state_dict().items()}
    if extra_keys:
        tensors["cond_stage_model.transformer.weight"] = torch.randn(64, 64)
        tensors["first_stage_model.decoder.weight"] = torch.randn(64, 64)
    save_file(tensors, str(path))
    return path
