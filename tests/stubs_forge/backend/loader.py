"""Stand-in for backend/loader.py (Forge dfdcbab6) and the part of `huggingface_guess` it uses.

Kept: `split_state_dict` (loader.py:449-483: whole file read with load_torch_file, the guess
from the UNet's keys and shapes, one state dict per component), `load_huggingface_component`
(loader.py:35-178: the scheduler from its config dir, the UNet built under
using_forge_operations in the storage dtype `dynamic_args['forge_unet_storage_dtype']`), and
`forge_loader` (loader.py:497-576: every component, the prediction-type fix, the engine).
A tiny "architecture": keys model.diffusion_model.{input,time,context,label,output}.*;
`label` present = SDXL; a key `v_pred` = v-prediction (huggingface_guess model_type).
"""

import enum
import importlib
import os

import torch

from backend import memory_management
from backend.args import dynamic_args
from backend.diffusion_engine.sd15 import StableDiffusion, StableDiffusionXL
from backend.nn.unet import IntegratedUNet2DConditionModel
from backend.operations import using_forge_operations
from backend.utils import load_torch_file

dir_path = os.path.dirname(__file__)
UNET_PREFIX = "model.diffusion_model."


class ModelType(enum.Enum):
    """huggingface_guess/model_list.py ModelType."""

    EPS = 1
    V_PREDICTION = 2


class _Guess:
    """huggingface_guess/model_list.py BASE: a config per architecture."""

    huggingface_repo = None
    unet_target = "unet"
    vae_target = "vae"
    unet_key_prefix = [UNET_PREFIX]

    def __init__(self, unet_config):
        self.unet_config = dict(unet_config)

    def inpaint_model(self):
        return self.unet_config["in_channels"] > 4


class SD15(_Guess):
    huggingface_repo = "runwayml/stable-diffusion-v1-5"


class SDXL(_Guess):
    huggingface_repo = "stabilityai/stable-diffusion-xl-base-1.0"


def guess(sd):
    """huggingface_guess.guess: the architecture from the UNet's keys and shapes."""
    unet_config = dict(
        in_channels=sd[UNET_PREFIX + "input.weight"].shape[1],
        model_channels=sd[UNET_PREFIX + "input.weight"].shape[0],
        context_dim=sd[UNET_PREFIX + "context.weight"].shape[1],
        adm_in_channels=sd[UNET_PREFIX + "label.weight"].shape[1] if UNET_PREFIX + "label.weight" in sd else None,
    )
    config = (SDXL if unet_config["adm_in_channels"] else SD15)(unet_config)
    config.model_type = ModelType.V_PREDICTION if "v_pred" in sd else ModelType.EPS
    return config


def split_state_dict(sd, additional_state_dicts=None):
    sd = load_torch_file(sd)
    estimated = guess(sd)
    state_dict = {
        estimated.unet_target: {k[len(UNET_PREFIX):]: v for k, v in sd.items() if k.startswith(UNET_PREFIX)},
        estimated.vae_target: {k: v for k, v in sd.items() if k.startswith("first_stage_model.")},
        "text_encoder": {k: v for k, v in sd.items() if k.startswith("cond_stage_model.")},
    }
    return state_dict, estimated


def load_huggingface_component(guess, component_name, lib_name, cls_name, repo_path, state_dict):
    if component_name == "scheduler":
        cls = getattr(importlib.import_module(lib_name), cls_name)
        return cls.from_pretrained(os.path.join(repo_path, component_name))
    if cls_name == "UNet2DConditionModel":
        assert isinstance(state_dict, dict) and len(state_dict) >= 4, "You do not have model state dict!"
        storage_dtype = dynamic_args.get("forge_unet_storage_dtype") or torch.float32
        with using_forge_operations(device=memory_management.cpu, dtype=storage_dtype):
            model = IntegratedUNet2DConditionModel.from_config(guess.unet_config).to(dtype=storage_dtype)
        model.load_state_dict(state_dict)
        model.requires_grad_(False)
        model.storage_dtype = storage_dtype
        model.computation_dtype = torch.float32
        model.load_device = memory_management.get_torch_device()
        model.initial_device = memory_management.cpu
        model.offload_device = memory_management.unet_offload_device()
        return model
    return None  # the text encoder and VAE of the stand-in have no weights


@torch.inference_mode()
def forge_loader(sd, additional_state_dicts=None):
    state_dicts, estimated_config = split_state_dict(sd, additional_state_dicts=additional_state_dicts)
    local_path = os.path.join(dir_path, "huggingface", estimated_config.huggingface_repo)
    config = importlib.import_module("diffusers").DiffusionPipeline.load_config(local_path)
    components = {}
    for name, v in config.items():
        if isinstance(v, list) and len(v) == 2:
            component = load_huggingface_component(estimated_config, name, v[0], v[1], local_path,
                                                   state_dicts.get(name))
            if component is not None:
                components[name] = component
    prediction_types = {"EPS": "epsilon", "V_PREDICTION": "v_prediction"}
    scheduler_config = components["scheduler"].config
    scheduler_config.prediction_type = prediction_types.get(estimated_config.model_type.name,
                                                            scheduler_config.prediction_type)
    engine = StableDiffusionXL if isinstance(estimated_config, SDXL) else StableDiffusion
    return engine(estimated_config=estimated_config, huggingface_components=components)
