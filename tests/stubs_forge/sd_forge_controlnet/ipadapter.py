"""Stand-in for extensions-builtin/sd_forge_ipadapter (Forge dfdcbab6): IPAdapterPatcher
(scripts/forge_ipadapter.py:110-159) applies a unit to a clone of the UNet patcher
(IPAdapterApply clones it), and set_model_patch_replace / CrossAttentionPatch
(lib_ipadapter/IPAdapterPlus.py:161-171, 369-480) keep one CrossAttentionPatch per attention
layer in model_options["transformer_options"]["patches_replace"]["attn2"], with one entry per
IP-Adapter unit (`weights`, conds, sigma range) read on every call. tiny UNet: one attention
layer, and the image embedding a fixed vector per unit (zeros for the uncond rows)."""

import torch
from backend.patcher import controlnet

from modules_forge.supported_controlnet import ControlModelPatcher


def set_model_patch_replace(model, patch_kwargs, key):
    to = model.model_options["transformer_options"]
    if "patches_replace" not in to:
        to["patches_replace"] = {}
    if "attn2" not in to["patches_replace"]:
        to["patches_replace"]["attn2"] = {}
    if key not in to["patches_replace"]["attn2"]:
        to["patches_replace"]["attn2"][key] = CrossAttentionPatch(**patch_kwargs)
    else:
        to["patches_replace"]["attn2"][key].set_new_condition(**patch_kwargs)


class CrossAttentionPatch:
    def __init__(self, weight, cond, uncond, sigma_start=0.0, sigma_end=1.0):
        self.weights = [weight]
        self.conds = [cond]
        self.unconds = [uncond]
        self.sigma_start = [sigma_start]
        self.sigma_end = [sigma_end]

    def set_new_condition(self, weight, cond, uncond, sigma_start=0.0, sigma_end=1.0):
        self.weights.append(weight)
        self.conds.append(cond)
        self.unconds.append(uncond)
        self.sigma_start.append(sigma_start)
        self.sigma_end.append(sigma_end)

    def __call__(self, n, context_attn2, value_attn2, extra_options):
        cond_or_uncond = extra_options["cond_or_uncond"]
        sigma = extra_options["sigmas"][0].item() if "sigmas" in extra_options else 999999999.9
        batch_prompt = n.shape[0] // len(cond_or_uncond)
        out = n
        for weight, cond, uncond, sigma_start, sigma_end in zip(self.weights, self.conds, self.unconds,
                                                                 self.sigma_start, self.sigma_end):
            if sigma > sigma_start or sigma < sigma_end:
                continue
            controlnet.CURRENT.setdefault("ip-adapter", []).append(weight)
            out_ip = torch.cat([(cond, uncond)[i].expand(batch_prompt, -1) for i in cond_or_uncond])
            out = out + out_ip * weight
        return out


class IPAdapterPatcher(ControlModelPatcher):
    def __init__(self, seed=7, channels=8):
        super().__init__()
        self.embedding = torch.randn(1, channels, generator=torch.Generator().manual_seed(seed)) * 0.3

    def process_before_every_sampling(self, process, cond, mask, *args, **kwargs):
        unet = process.sd_model.forge_objects.unet.clone()
        predictor = unet.model.predictor
        set_model_patch_replace(unet, dict(weight=self.strength, cond=self.embedding,
                                           uncond=torch.zeros_like(self.embedding),
                                           sigma_start=predictor.percent_to_sigma(self.start_percent),
                                           sigma_end=predictor.percent_to_sigma(self.end_percent)),
                                ("middle", 0, 0))
        process.sd_model.forge_objects.unet = unet
