"""A Forge WebUI in a box for tests: the Forge stand-in with the real scripts/w2sd.py loaded, a
tiny checkpoint loaded through backend.loader (forge_model_reload), the sd_forge_lora stand-in,
the built-in ControlNet's stand-in (sd_forge_controlnet, in generations that pass `controlnet=`),
and `generate()` running process_images like the API does. Same interface as
tests/stubs/harness.py (conftest's `webui` fixture builds either).

`WebUI.reset()` puts every global back to a fresh server's state between tests.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, List, Optional

import networks
import torch
from backend import memory_management, operations
from backend.args import dynamic_args
from backend.patcher import controlnet as patcher_controlnet
from modules import errors, extra_networks, processing, script_callbacks, scripts, sd_models, sd_samplers_common, shared
from safetensors.torch import save_file
from sd_forge_controlnet.controlnet import ControlNetForForgeOfficial
from webui_patterns import unet_batches

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "w2sd.py")
DEFAULTS = dict(prompt="a red cat", negative_prompt="blurry", steps=6, seed=1, cfg_scale=7.0, width=32, height=32)
UNET = "model.diffusion_model."
SDXL_ADM = 8 + 6 * 4  # an SDXL checkpoint's label layer: pooled text (8) + 6 size numbers x SIZE_EMBED (sd15.py)


@dataclass
class Call:
    """One CFG denoiser call as the cfg_denoiser callback saw it."""

    role: Any  # None (the sampler's own call), "weak" or "strong"
    step: int  # den.step: the index prompt editing used
    text_cond: Any
    unet: str  # "strong", "weak" (the weak checkpoint) or "other": the UNet the call runs
    lora: Optional[float]  # the LoRA multiplier W2SD set for the call (None: the prompt's own)
    hr_cfg: Optional[float]  # p.hr_cfg during a hires call (the scale Forge uses there)
    unet_index: int = 0  # strong-UNet calls made before this call
    checkpoint: str = ""  # the file name of the loaded checkpoint (the refiner's after the switch)
    text_uncond: Any = None
    hires: bool = False  # a call of the hires pass


@dataclass
class Result:
    processed: Any
    p: Any
    calls: List[Call] = field(default_factory=list)
    unet_calls: List[int] = field(default_factory=list)
    weak_unet_calls: List[int] = field(default_factory=list)
    control: List[dict] = field(default_factory=list)  # per UNet batch: what the units did

    @property
    def latents(self):
        return torch.stack(self.processed.latents)

    @property
    def infotext(self) -> str:
        return self.processed.infotexts[0]

    def roles(self):
        return [c.role for c in self.calls]

    def batches(self):
        """(role, rows the strong UNet got) per strong-UNet call (webui_patterns.unet_batches)."""
        return unet_batches(self.calls, self.unet_calls)


def unet_state_dict(seed=0, channels=8, context_dim=8, in_channels=4, adm=None, scale=0.2):
    """Tensors of the stand-in's tiny UNet (backend/nn/unet.py) under their checkpoint keys."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"input": (channels, in_channels, 3, 3), "time": (channels, 8), "context": (channels, context_dim),
              "output": (4, channels, 3, 3)}
    if adm:
        shapes["label"] = (channels, adm)
    tensors = {}
    for name, shape in shapes.items():
        tensors[f"{UNET}{name}.weight"] = torch.randn(shape, generator=g) * scale
        tensors[f"{UNET}{name}.bias"] = torch.randn(shape[0], generator=g) * 0.05
    return tensors


def write_checkpoint(path, seed=0, extra_keys=True, v_pred=False, **unet):
    """A checkpoint as the WebUI's list holds them: the UNet under model.diffusion_model.*, plus
    text-encoder and VAE tensors that loading the UNet alone must leave out."""
    tensors = unet_state_dict(seed, **unet)
    if extra_keys:
        tensors["cond_stage_model.transformer.weight"] = torch.randn(64, 64)
        tensors["first_stage_model.decoder.weight"] = torch.randn(64, 64)
    if v_pred:
        tensors["v_pred"] = torch.zeros(())
    save_file(tensors, str(path))
    return str(path)


def write_lora(path, seed=3, scale=0.3, rank=2, layers=("input", "time", "context", "output"), dora=False):
    """A kohya-style LoRA file for the tiny UNet (lora_unet_<layer>.lora_up/down.weight, .alpha)."""
    g = torch.Generator().manual_seed(seed)
    shapes = unet_state_dict()
    tensors = {}
    for layer in layers:
        out_features, *rest = shapes[f"{UNET}{layer}.weight"].shape
        in_numel = int(torch.tensor(rest).prod())
        key = f"lora_unet_{layer}"
        tensors[f"{key}.lora_up.weight"] = torch.randn(out_features, rank, generator=g) * scale
        down = torch.randn(rank, in_numel, generator=g) * scale
        tensors[f"{key}.lora_down.weight"] = down.reshape(rank, *rest) if len(rest) > 1 else down
        tensors[f"{key}.alpha"] = torch.tensor(float(rank))
        if dora:
            tensors[f"{key}.dora_scale"] = torch.ones(out_features, *[1] * len(rest))
    save_file(tensors, str(path))
    return str(path)


class WebUI:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="w2sd-forge-")
        self.strong_path = write_checkpoint(os.path.join(self.dir, "strong.safetensors"), seed=0)
        self.script = scripts.load_script(SCRIPT)()
        self.controlnet = ControlNetForForgeOfficial()
        self.observers = []  # functions(call: Call, p) run inside every cfg_denoiser callback
        self.extra_scripts = []
        self.encoded = []  # (text, encoded while a sampler function ran)
        self._sampling = False
        self._patch_launch_sampling()
        self.reset()

    def _patch_launch_sampling(self):
        """Record whether text encoding ever happens while a sampler function runs."""
        launch = sd_samplers_common.Sampler.launch_sampling
        harness = self

        def launch_sampling(sampler, steps, func):
            harness._sampling = True
            try:
                return launch(sampler, steps, func)
            finally:
                harness._sampling = False

        sd_samplers_common.Sampler.launch_sampling = launch_sampling

    def reset(self, checkpoint=None):
        """A fresh server with `checkpoint` (default: strong.safetensors) loaded."""
        from lib_w2sd.webui.adapters import forge_unet

        shared.opts.data.clear()
        shared.state.begin()
        forge_unet.cache.clear()
        memory_management.current_loaded_models.clear()
        memory_management.load_log.clear()
        dynamic_args.update(online_lora=False, forge_unet_storage_dtype=None)
        sd_models.checkpoints_list.clear()
        sd_models.checkpoint_aliases.clear()
        info = sd_models.CheckpointInfo(checkpoint or self.strong_path)
        info.register()
        shared.opts.data["sd_model_checkpoint"] = info.title  # the WebUI's selected checkpoint
        sd_models.model_data.forge_loading_parameters = dict(checkpoint_info=info)
        sd_models.model_data.forge_hash = ""
        sd_models.forge_model_reload()
        self.model = shared.sd_model
        self.strong_unet = self.model.forge_objects.unet.model.diffusion_model
        self._watch_encoder()
        base = processing._a1111
        base.StableDiffusionProcessing.cached_c = [None, None]
        base.StableDiffusionProcessing.cached_uc = [None, None]
        base.StableDiffusionProcessingTxt2Img.cached_hr_c = [None, None]
        base.StableDiffusionProcessingTxt2Img.cached_hr_uc = [None, None]
        networks.loaded_networks.clear()
        networks.available_networks.clear()
        extra_networks.extra_network_registry.clear()
        extra_networks.register_extra_network(networks.ExtraNetworkLora())
        errors.reported.clear()
        script_callbacks.clear_callbacks()
        script_callbacks.on_cfg_denoiser(self._observe)
        self.observers.clear()
        self.extra_scripts.clear()
        self.encoded.clear()
        operations.merge_calls = 0
        self._calls = []
        self.controlnet.enabled = []
        self._clear_control_logs()

    def _clear_control_logs(self):
        patcher_controlnet.CALLS.clear()
        for model in self.controlnet.models.values():
            getattr(getattr(model.model_patcher, "control_model", None), "calls", []).clear()

    def _watch_encoder(self):
        encoder = self.model.forge_objects.clip.cond_stage_model
        forward = encoder.forward
        harness = self

        def watched(texts):
            harness.encoded.extend((text, harness._sampling) for text in texts)
            return forward(texts)

        encoder.forward = watched

    def weak_unet(self):
        from lib_w2sd.webui.adapters import forge_unet

        entry = forge_unet.cache.entry
        return entry.patcher.model.diffusion_model if entry is not None else None

    def _observe(self, params):
        den = params.denoiser
        p = den.p
        model = den.inner_model.inner_model.forge_objects.unet.model.diffusion_model
        unet = "strong" if model is self.strong_unet else "weak" if model is self.weak_unet() else "other"
        session = getattr(p, "w2sd_forge_lora", None)
        hires = getattr(p, "is_hr_pass", False)
        call = Call(getattr(p, "w2sd_extra_call", None), den.step, params.text_cond, unet,
                    session.multiplier if session is not None else None, p.hr_cfg if hires else None,
                    len(self.strong_unet.calls), shared.sd_model.sd_checkpoint_info.name, params.text_uncond,
                    bool(hires))
        self._calls.append(call)
        for observe in self.observers:
            observe(call, p)

    def settings(self, **values):
        shared.opts.data.update(values)

    def generate(self, w2sd=None, img2img=False, args=None, controlnet=None, **kwargs) -> Result:
        """One generation; `w2sd` is the API's named dict (None: W2SD off), `args` the raw list;
        `controlnet` the ControlNet units (a list, maybe empty; None: the ControlNet script disabled)."""
        shared.state.begin()
        self._clear_control_logs()
        self.strong_unet.calls.clear()
        weak = self.weak_unet()
        if weak is not None:
            weak.calls.clear()
        self._calls = []
        options = dict(DEFAULTS, **kwargs)
        cls = processing.StableDiffusionProcessingImg2Img if img2img else processing.StableDiffusionProcessingTxt2Img
        if img2img:
            h, w = options["height"], options["width"]
            options.setdefault("init_images", [torch.linspace(0, 1, 3 * h * w).reshape(3, h, w)])
        p = cls(**options)
        extension = [] if controlnet is None else [self.controlnet]  # built-in extensions load first
        p.scripts = scripts.ScriptRunner([*extension, self.script, *self.extra_scripts], is_img2img=img2img)
        if args is None:
            args = [dict(w2sd or {"enabled": False})] + [None] * len(self.extra_scripts)
        p.script_args = [controlnet] * len(extension) + list(args)
        processed = processing.process_images(p)
        weak = self.weak_unet()
        return Result(processed, p, list(self._calls), list(self.strong_unet.calls),
                      list(weak.calls) if weak is not None else [], list(patcher_controlnet.CALLS))

    def control_calls(self):
        return self.controlnet.control_calls()

    def add_lora(self, name="style", **kwargs):
        networks.available_networks[name] = write_lora(os.path.join(self.dir, f"{name}.safetensors"), **kwargs)
        return networks.available_networks[name]

    def add_refiner(self, **kwargs):
        """refiner.safetensors in the WebUI's list, of the loaded model's kind (`kwargs` as for
        write_checkpoint; the strong one is strong.safetensors)."""
        return self.add_checkpoint("refiner.safetensors", seed=7, **kwargs)

    def add_checkpoint(self, filename, **kwargs):
        """Write a checkpoint into the models folder and register it in the WebUI's list."""
        path = os.path.join(self.dir, filename)
        if filename.endswith(".safetensors"):
            write_checkpoint(path, **kwargs)
        else:
            with open(path, "wb") as file:
                file.write(b"pickled data W2SD must never load")
        info = sd_models.CheckpointInfo(path)
        info.register()
        return info
