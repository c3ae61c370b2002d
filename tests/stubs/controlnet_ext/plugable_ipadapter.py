"""Stand-in for scripts/ipadapter/plugable_ipadapter.py (sd-webui-controlnet 56cec5b2):
PlugableIPAdapter.hook patches the UNet's cross-attention once per generation (hack_blk,
plugable_ipadapter.py:57-91); every call of a patched layer adds each patch's output, and a patch
reads the adapter's `weight` (a number, or a dict per transformer) then, returning 0.0 without
computing anything at weight 0 or outside its start/end (plugable_ipadapter.py:169-173, 279-303).
clear_all_ip_adapter puts the layers back. tiny_sd's TinyUNet has no attention: its `context`
layer (the text conditioning's way in) is the patched layer, and the image embedding a fixed
vector per adapter (ImageEmbed.eval picks cond / uncond rows by the hook's cond mark)."""

import torch

all_hacks = {}
current_model = None


def attn_forward_hacked(self, x, **kwargs):
    out = self.original_forward(x)
    for f in self.ipadapter_hacks:
        out = out + f(self, x, None)
    return out


def hack_blk(block, function):
    if not hasattr(block, "ipadapter_hacks"):
        block.ipadapter_hacks = []
    if len(block.ipadapter_hacks) == 0:
        all_hacks[block] = block.forward
        block.original_forward = block.forward
        block.forward = attn_forward_hacked.__get__(block, type(block))
    block.ipadapter_hacks.append(function)


def clear_all_ip_adapter():
    global all_hacks, current_model
    for k, v in all_hacks.items():
        k.forward = v
        k.ipadapter_hacks = []
    all_hacks = {}
    current_model = None


class PlugableIPAdapter(torch.nn.Module):
    def __init__(self, seed=7, channels=8):
        super().__init__()
        self.cond_emb = torch.randn(channels, generator=torch.Generator().manual_seed(seed)) * 0.3
        self.weight = 1.0
        self.p_start, self.p_end = 0.0, 1.0

    def reset(self):
        pass

    def hook(self, model, preprocessor_outputs, weight, start, end, latent_width=0, latent_height=0,
             effective_region_mask=None, pulid_attn_setting=None, dtype=torch.float32):
        global current_model
        current_model = model
        self.p_start, self.p_end = start, end
        self.weight = weight
        hack_blk(model.context, self.patch_forward(0, 0))

    def weight_on_transformer(self, transformer_index):
        if isinstance(self.weight, dict):
            return self.weight.get(transformer_index, 0.0)
        return self.weight

    def patch_forward(self, number, transformer_index):
        def forward(attn_blk, x, q):
            weight = self.weight_on_transformer(transformer_index)
            current_sampling_percent = getattr(current_model, "current_sampling_percent", 0.5)
            if current_sampling_percent < self.p_start or current_sampling_percent > self.p_end or weight == 0.0:
                return 0.0
            current_model.stand_in_entry.setdefault("ip-adapter", []).append(weight)
            cond_mark = current_model.cond_mark[:, :, 0, 0]
            return self.cond_emb[None] * cond_mark * weight

        return forward
