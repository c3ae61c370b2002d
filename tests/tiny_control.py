"""A tiny control model for both ControlNet stand-ins (tests/stubs/controlnet_ext for
sd-webui-controlnet's loaded models, tests/stubs_forge/backend/patcher/controlnet.py for Forge's
cldm.ControlNet): two residuals from the latent and the control image, the image pooled to the
latent's size. `calls` records the batch size of every evaluation."""

import torch


class TinyControlNet(torch.nn.Module):
    def __init__(self, seed=5, channels=8):
        super().__init__()
        torch.manual_seed(seed)
        self.from_x = torch.nn.Conv2d(4, channels, 3, padding=1)
        self.from_hint = torch.nn.Conv2d(3, channels, 1)
        self.requires_grad_(False)
        self.dtype = torch.float32
        self.calls = []

    def forward(self, x, hint, timesteps, context, y=None, **kwargs):
        self.calls.append(x.shape[0])
        hint = torch.nn.functional.adaptive_avg_pool2d(hint, x.shape[2:]).expand(x.shape[0], -1, -1, -1)
        h = torch.tanh(self.from_x(x) + self.from_hint(hint))
        return [h * 0.5, h * 0.25]
