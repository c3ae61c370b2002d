"""Stand-in for backend/nn/unet.py (Forge dfdcbab6): timestep_embedding and Timestep (unet.py:55-67,
95-101, as they are: SDXL's size conditioning uses them), and IntegratedUNet2DConditionModel, cut
down to four layers (five with SDXL's label embedding of the vector `y`) with the real forward
signature (x, timesteps, context, y, control, transformer_options). Built under
`using_forge_operations`, so its Linear/Conv2d merge online LoRA patches as Forge's do. `calls`
records the batch size of every forward (tests count denoiser evaluations per UNet with it). Like
the real one it adds a ControlNet's control to its middle and output blocks (apply_control,
unet.py) and runs the cross-attention through the `patches_replace["attn2"]` patches of
transformer_options (IP-Adapter's, unet.py CrossAttention / attention.py); the `context` layer
stands in for the cross-attention."""

import math

import torch


def timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None].to(device=timesteps.device)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Timestep(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        return timestep_embedding(t, self.dim)


class IntegratedUNet2DConditionModel(torch.nn.Module):
    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __init__(self, in_channels=4, model_channels=8, context_dim=8, adm_in_channels=None, **kwargs):
        super().__init__()
        self.config = dict(in_channels=in_channels, model_channels=model_channels, context_dim=context_dim,
                           adm_in_channels=adm_in_channels)
        self.input = torch.nn.Conv2d(in_channels, model_channels, 3, padding=1)
        self.time = torch.nn.Linear(8, model_channels)
        self.context = torch.nn.Linear(context_dim, model_channels)
        self.label = torch.nn.Linear(adm_in_channels, model_channels) if adm_in_channels else None
        self.output = torch.nn.Conv2d(model_channels, 4, 3, padding=1)
        self.calls = []

    def forward(self, x, timesteps=None, context=None, y=None, control=None, transformer_options={}, **kwargs):
        self.calls.append(x.shape[0])
        freqs = torch.arange(4, dtype=torch.float32, device=x.device) + 1
        t = timesteps.float()[:, None] / 1000 * freqs
        attention = self.context(context.mean(1))
        for patch in transformer_options.get("patches_replace", {}).get("attn2", {}).values():
            attention = patch(attention, context, context, transformer_options)
        emb = self.time(torch.cat([t.sin(), t.cos()], dim=1)) + attention
        if self.label is not None:
            emb = emb + self.label(y)
        h = apply_control(self.input(x) + emb[:, :, None, None], control, "middle")
        return self.output(apply_control(torch.tanh(h), control, "output")) * 0.5


def apply_control(h, control, name):
    if control is not None and name in control and len(control[name]) > 0:
        ctrl = control[name].pop()
        if ctrl is not None:
            h = h + ctrl
    return h
