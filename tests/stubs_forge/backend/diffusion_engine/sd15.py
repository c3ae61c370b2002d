"""Stand-in for backend/diffusion_engine/sd15.py and sdxl.py (Forge dfdcbab6): the engine
`shared.sd_model` is in Forge. The text encoder turns each word into a fixed random vector
(`encoded` lists every text it encoded); SDXL's conds are dicts {crossattn, vector} with the size
and crop conditioning built as sdxl.py:86-121 builds it. get_learned_conditioning loads the CLIP
patcher first, as the real one does (sd15.py:63-67)."""

import zlib

import torch

from backend import memory_management
from backend.diffusion_engine.base import ForgeDiffusionEngine, ForgeObjects
from backend.nn.unet import Timestep
from backend.patcher.base import ModelPatcher
from backend.patcher.unet import UnetPatcher

TOKENS = 6
SIZE_EMBED = 4  # Timestep(256) in sdxl.py:71; the UNet's adm_in_channels = text width + 6 * SIZE_EMBED


class TinyTextEncoder(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.width = width
        self.scale = torch.nn.Parameter(torch.ones(1), requires_grad=False)
        self.encoded = []

    def forward(self, texts):
        self.encoded.extend(texts)
        out = torch.zeros(len(texts), TOKENS, self.width)
        for i, text in enumerate(texts):
            for j, word in enumerate(text.replace(",", " ").split()[:TOKENS]):
                gen = torch.Generator().manual_seed(zlib.crc32(word.encode()))
                out[i, j] = torch.randn(self.width, generator=gen)
        return out * self.scale


class CLIP:
    """backend/patcher/clip.py: the text encoder and its patcher."""

    def __init__(self, width):
        self.cond_stage_model = TinyTextEncoder(width)
        cpu = memory_management.cpu
        self.patcher = ModelPatcher(self.cond_stage_model, load_device=cpu, offload_device=cpu)


class VAE:
    latent_channels = 4


class StableDiffusion(ForgeDiffusionEngine):
    def __init__(self, estimated_config, huggingface_components):
        super().__init__(estimated_config, huggingface_components)
        unet = UnetPatcher.from_model(model=huggingface_components["unet"],
                                      diffusers_scheduler=huggingface_components["scheduler"],
                                      config=estimated_config)
        clip = CLIP(estimated_config.unet_config["context_dim"])
        self.forge_objects = ForgeObjects(unet=unet, clip=clip, vae=VAE(), clipvision=None)
        self.forge_objects_original = self.forge_objects.shallow_copy()
        self.forge_objects_after_applying_lora = self.forge_objects.shallow_copy()
        self.is_sd1 = True

    @torch.inference_mode()
    def get_learned_conditioning(self, prompt):
        memory_management.load_model_gpu(self.forge_objects.clip.patcher)
        return self.forge_objects.clip.cond_stage_model(list(prompt))

    def get_prompt_lengths_on_ui(self, prompt):
        return len(prompt.split()), 75

    @torch.inference_mode()
    def encode_first_stage(self, x):
        z = torch.nn.functional.avg_pool2d(x, 8)
        return torch.cat([z, z.mean(1, keepdim=True)], dim=1)

    @torch.inference_mode()
    def decode_first_stage(self, x):
        return torch.nn.functional.interpolate(torch.tanh(x[:, :3]), scale_factor=8, mode="nearest")

    def get_first_stage_encoding(self, x):
        return x


class StableDiffusionXL(StableDiffusion):
    def __init__(self, estimated_config, huggingface_components):
        super().__init__(estimated_config, huggingface_components)
        self.embedder = Timestep(SIZE_EMBED)
        self.is_sd1, self.is_sdxl = False, True

    @torch.inference_mode()
    def get_learned_conditioning(self, prompt):
        """sdxl.py:86-121 with one text encoder: pooled text, then the embedded height, width, crop
        top/left (opts) and target size; an all-empty negative prompt zeroes the text parts only."""
        from modules.shared import opts

        crossattn = super().get_learned_conditioning(prompt)
        clip_pooled = crossattn.mean(1)
        width = getattr(prompt, "width", 1024) or 1024
        height = getattr(prompt, "height", 1024) or 1024
        is_negative_prompt = getattr(prompt, "is_negative_prompt", False)
        numbers = [height, width, opts.sdxl_crop_top, opts.sdxl_crop_left, height, width]
        out = [self.embedder(torch.Tensor([n])) for n in numbers]
        flat = torch.flatten(torch.cat(out)).unsqueeze(dim=0).repeat(clip_pooled.shape[0], 1).to(clip_pooled)
        if is_negative_prompt and all(x == "" for x in prompt):
            clip_pooled, crossattn = torch.zeros_like(clip_pooled), torch.zeros_like(crossattn)
        return dict(crossattn=crossattn, vector=torch.cat([clip_pooled, flat], dim=1))
