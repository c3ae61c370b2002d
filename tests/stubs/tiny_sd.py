"""A tiny stand-in for the WebUI's loaded model `shared.sd_model` (ldm's LatentDiffusion as
A1111 v1.10.1 uses it: apply_model, alphas_cumprod, model.diffusion_model, get_learned_conditioning,
encode/decode_first_stage), small enough to run a whole generation on a CPU in milliseconds.

TinyUNet records every call (`calls`: batch sizes) so tests can count denoiser evaluations.
Its layers are the Lora stand-in's LoraLinear/LoraConv2d, so `<lora:...>` tags change it.
TinySD(sdxl=True) gives SDXL's dict conds {"crossattn", "vector"} built as modules/sd_models_xl.py
get_learned_conditioning (A1111 v1.10.1, 82a973c0) builds them: the pooled text embedding, then
sgm's size and crop conditioning (original size, crop top/left from opts, target size), and a UNet
that reads the vector (label_emb); inpainting=True a 9-channel UNet taking the mask and masked
latent as image conds (conditioning_key "hybrid").
"""

from __future__ import annotations

import contextlib
import math
import zlib

import torch

from networks import LoraConv2d, LoraLinear

TOKENS, WIDTH = 6, 8
SIZE_EMBED = 4  # sgm's ConcatTimestepEmbedderND outdim (256 in SDXL) per size number
SDXL_ADM = WIDTH + 6 * SIZE_EMBED  # pooled text + original size, crop, target size (2 numbers each)


def timestep_embedding(t: torch.Tensor, dim: int, max_period=10000) -> torch.Tensor:
    """sgm/modules/diffusionmodules/util.py timestep_embedding: cos then sin of t * frequencies."""
    freqs = torch.exp(-math.log(max_period) * torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TinyUNet(torch.nn.Module):
    def __init__(self, channels=8, in_channels=4, seed=0, adm_in_channels=None):
        super().__init__()
        torch.manual_seed(seed)
        self.input = LoraConv2d(in_channels, channels, 3, padding=1)
        self.time = LoraLinear(8, channels)
        self.context = LoraLinear(WIDTH, channels)
        self.label = LoraLinear(adm_in_channels, channels) if adm_in_channels else None  # SDXL's label_emb
        self.output = LoraConv2d(channels, 4, 3, padding=1)
        self.requires_grad_(False)
        self.calls = []

    def forward(self, x, timesteps=None, context=None, y=None, **kwargs):
        self.calls.append(x.shape[0])
        freqs = torch.arange(4, dtype=torch.float32) + 1
        t = timesteps.float()[:, None] / 1000 * freqs
        emb = self.time(torch.cat([t.sin(), t.cos()], dim=1)) + self.context(context.mean(1))
        if self.label is not None:
            emb = emb + self.label(y)
        return self.output(torch.tanh(self.input(x) + emb[:, :, None, None])) * 0.5


class DiffusionWrapper(torch.nn.Module):
    def __init__(self, unet, conditioning_key="crossattn"):
        super().__init__()
        self.diffusion_model = unet
        self.conditioning_key = conditioning_key

    def forward(self, x, t, c_concat=None, c_crossattn=None, crossattn=None, vector=None):
        if self.conditioning_key == "hybrid":
            x = torch.cat([x] + list(c_concat), dim=1)
        if crossattn is not None:  # SDXL's dict conds (sgm's OpenAIWrapper: context and y)
            return self.diffusion_model(x, t, context=crossattn, y=vector)
        return self.diffusion_model(x, t, context=torch.cat(c_crossattn, 1))


class TinyTextEncoder(torch.nn.Module):
    """Each word becomes a fixed random vector; `encoded` counts the texts encoded."""

    def __init__(self):
        super().__init__()
        self.encoded = []

    def forward(self, texts):
        self.encoded.extend(texts)
        out = torch.zeros(len(texts), TOKENS, WIDTH)
        for i, text in enumerate(texts):
            for j, word in enumerate(text.replace(",", " ").split()[:TOKENS]):
                gen = torch.Generator().manual_seed(zlib.crc32(word.encode()))
                out[i, j] = torch.randn(WIDTH, generator=gen)
        return out


class CheckpointInfo:
    def __init__(self, title="tiny.safetensors [0000]", filename="tiny.safetensors"):
        self.title = self.short_title = title
        self.filename = filename
        self.name_for_extra = "tiny"


class TinySD(torch.nn.Module):
    def __init__(self, seed=0, inpainting=False, sdxl=False):
        super().__init__()
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).float())
        unet = TinyUNet(seed=seed, in_channels=9 if inpainting else 4, adm_in_channels=SDXL_ADM if sdxl else None)
        self.model = DiffusionWrapper(unet, "hybrid" if inpainting else "crossattn")
        self.cond_stage_model = TinyTextEncoder()
        self.parameterization = "eps"
        self.cond_stage_key = "txt"
        self.is_sdxl = sdxl
        self.latent_channels = 4
        self.sd_checkpoint_info = CheckpointInfo()
        self.sd_model_hash = "0000"

    @property
    def unet(self) -> TinyUNet:
        return self.model.diffusion_model

    def apply_model(self, x, t, cond):
        return self.model(x, t, **cond)

    def get_learned_conditioning(self, texts):
        crossattn = self.cond_stage_model(list(texts))
        return self._sdxl_conds(texts, crossattn) if self.is_sdxl else crossattn

    @staticmethod
    def _sdxl_conds(batch, crossattn):
        """sd_models_xl.py get_learned_conditioning (12-33) and sgm's GeneralConditioner: the size
        numbers from the SdConditioning batch (1024 when it has none), crop from opts; an all-empty
        negative prompt zeroes the text embeddings (force_zero_embeddings=['txt']), not the sizes."""
        from modules import shared

        width = getattr(batch, "width", 1024) or 1024
        height = getattr(batch, "height", 1024) or 1024
        pooled = crossattn.mean(1)
        if getattr(batch, "is_negative_prompt", False) and all(x == "" for x in batch):
            crossattn, pooled = torch.zeros_like(crossattn), torch.zeros_like(pooled)
        numbers = [height, width, shared.opts.sdxl_crop_top, shared.opts.sdxl_crop_left, height, width]
        sizes = timestep_embedding(torch.tensor(numbers, dtype=torch.float32), SIZE_EMBED).reshape(1, -1)
        return {"crossattn": crossattn, "vector": torch.cat([pooled, sizes.repeat(len(batch), 1)], dim=1)}

    @contextlib.contextmanager
    def ema_scope(self):
        yield

    def decode_first_stage(self, z):
        return torch.nn.functional.interpolate(torch.tanh(z[:, :3]), scale_factor=8, mode="nearest")

    def encode_first_stage(self, image):
        z = torch.nn.functional.avg_pool2d(image, 8)
        return torch.cat([z, z.mean(1, keepdim=True)], dim=1)

    def get_first_stage_encoding(self, z):
        return z

