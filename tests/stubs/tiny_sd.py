"""A tiny stand-in for the WebUI's loaded model `shared.sd_model` (ldm's LatentDiffusion as
A1111 v1.10.1 uses it: apply_model, alphas_cumprod, model.diffusion_model, get_learned_conditioning,
encode/decode_first_stage), small enough to run a whole generation on a CPU in milliseconds.

TinyUNet records every call (`calls`: batch sizes) so tests can count denoiser evaluations.
Its layers are the Lora stand-in's LoraLinear/LoraConv2d, so `<lora:...>` tags change it.
TinySD(sdxl=True) gives SDXL's dict conds {"crossattn", "vector"}; inpainting=True a 9-channel
UNet taking the mask and masked latent as image conds (conditioning_key "hybrid").
"""

from __future__ import annotations

import contextlib
import zlib

import torch

from networks import LoraConv2d, LoraLinear

TOKENS, WIDTH = 6, 8


class TinyUNet(torch.nn.Module):
    def __init__(self, channels=8, in_channels=4, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.input = LoraConv2d(in_channels, channels, 3, padding=1)
        self.time = LoraLinear(8, channels)
        self.context = LoraLinear(WIDTH, channels)
        self.output = LoraConv2d(channels, 4, 3, padding=1)
        self.requires_grad_(False)
        self.calls = []

    def forward(self, x, timesteps=None, context=None, **kwargs):
        self.calls.append(x.shape[0])
        freqs = torch.arange(4, dtype=torch.float32) + 1
        t = timesteps.float()[:, None] / 1000 * freqs
        temb = torch.cat([t.sin(), t.cos()], dim=1)
        h = self.input(x) + self.time(temb)[:, :, None, None] + self.context(context.mean(1))[:, :, None, None]
        return self.output(torch.tanh(h)) * 0.5


class DiffusionWrapper(torch.nn.Module):
    def __init__(self, unet, conditioning_key="crossattn"):
        super().__init__()
        self.diffusion_model = unet
        self.conditioning_key = conditioning_key

    def forward(self, x, t, c_concat=None, c_crossattn=None, crossattn=None, vector=None):
        if self.conditioning_key == "hybrid":
            x = torch.cat([x] + list(c_concat), dim=1)
        if crossattn is not None:  # SDXL's dict conds
            return self.diffusion_model(x, t, context=crossattn + vector[:, None, :WIDTH])
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
        unet = TinyUNet(seed=seed, in_channels=9 if inpainting else 4)
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
        if self.is_sdxl:  # SDXL: a dict with the pooled "vector" beside the token embeddings
            return {"crossattn": crossattn, "vector": crossattn.mean(1).repeat(1, 2)}
        return crossattn

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

