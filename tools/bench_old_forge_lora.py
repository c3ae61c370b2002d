"""Cost of one LoRA switch on Forge's first backend (reForge, Forge Classic), measured on the
old-backend stand-in (tests/stubs_oldforge) against one UNet call, on the CPU.

    PYTHONPATH=. python tools/bench_old_forge_lora.py [--channels 320 --blocks 8 --size 64 --rank 16]

The UNet is a stack of `blocks` pairs of a 3x3 convolution and a token projection (Linear), SD1.5's
first-level widths by default, with a kohya LoRA of rank `rank` on every layer, loaded as the forks
do (load_lora_for_models on a clone of the UNet patcher, merged into the weights by load_models_gpu).
Prints the medians of:
- one UNet call (batch 2: a cond and an uncond row, the `size` latent);
- one switched UNet call: the same call inside lib_w2sd.webui.adapters.old_forge_lora.OldLoraSwitch
  .applied(-1.5) (each LoRA layer's weight merged with the patches at (target - own) into a new
  parameter for its forward, its own parameter put back after), measured alternately with the first;
- what re-merging the weights would cost instead (unpatch_model + patch_model at the other
  multiplier), as a ratio to the UNet call. A reflected step with a LoRA difference makes two
  switched calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests", "stubs_oldforge"), os.path.join(ROOT, "tests"), ROOT]

import torch  # noqa: E402
from ldm_patched.modules import model_management  # noqa: E402
from ldm_patched.modules.model_base import BaseModel  # noqa: E402
from ldm_patched.modules.sd import load_lora_for_models  # noqa: E402
from modules_forge.unet_patcher import UnetPatcher  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from lib_w2sd.webui.adapters.old_forge_lora import OldLoraSwitch  # noqa: E402


class BenchUNet(torch.nn.Module):
    def __init__(self, channels, blocks, context=768):
        super().__init__()
        torch.manual_seed(0)
        self.input = torch.nn.Conv2d(4, channels, 3, padding=1)
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(channels, channels, 3, padding=1) for _ in range(blocks))
        self.projs = torch.nn.ModuleList(torch.nn.Linear(channels, channels) for _ in range(blocks))
        self.context = torch.nn.Linear(context, channels)
        self.output = torch.nn.Conv2d(channels, 4, 3, padding=1)
        self.requires_grad_(False)

    def forward(self, x, timesteps=None, context=None, **kwargs):
        h = self.input(x) + self.context(context.mean(1))[:, :, None, None]
        for conv, proj in zip(self.convs, self.projs):
            h = h + conv(torch.tanh(h)) * 0.1
            h = h + proj(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) * 0.1
        return self.output(torch.tanh(h))


def write_lora(path, unet, rank):
    from safetensors.torch import save_file

    tensors = {}
    for name, layer in unet.named_modules():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            out_features, *rest = layer.weight.shape
            key = "lora_unet_" + name.replace(".", "_")
            tensors[f"{key}.lora_up.weight"] = torch.randn(out_features, rank) * 0.01
            tensors[f"{key}.lora_down.weight"] = torch.randn(rank, *rest) * 0.01
            tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(tensors, path)


def median_seconds(function, repeats):
    """The median wall time of `repeats` calls of function()."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=320)
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="latent side (64: a 512 px image)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    unet = BenchUNet(args.channels, args.blocks)
    base = UnetPatcher(BaseModel(unet, torch.cumprod(1 - torch.linspace(0.00085, 0.012, 1000), 0)))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "bench.safetensors")
        write_lora(path, unet, args.rank)
        patched, _ = load_lora_for_models(base, None, load_file(path), 0.8, 0.8, path)
    model_management.load_models_gpu([patched])  # merged at 0.8, as the forks load it
    own = {key: entries[len(base.patches.get(key, ())):] for key, entries in patched.patches.items()}
    switch = OldLoraSwitch(patched, own)

    x = torch.randn(2, 4, args.size, args.size)
    t = torch.tensor([500.0, 500.0])
    context = torch.randn(2, 77, 768)

    def unet_call():
        with torch.no_grad():
            patched.model.apply_model(x, t, c_crossattn=context)

    def switched_call():
        with switch.applied(-1.5):
            unet_call()

    def remerge():
        patched.unpatch_model()
        for entries in patched.patches.values():
            entries[:] = [(-1.5, *entry[1:]) for entry in entries]
        patched.patch_model()

    plain, switched = [], []
    for _ in range(args.repeats):  # alternating, so that both see the same machine load
        plain.append(median_seconds(unet_call, 1))
        switched.append(median_seconds(switched_call, 1))
    plain, switched = statistics.median(plain), statistics.median(switched)
    remerged = median_seconds(remerge, args.repeats)
    params = sum(p.numel() for p in unet.parameters())
    print(f"UNet: {len(switch)} LoRA layers, {params / 1e6:.1f} M parameters, latent {args.size}x{args.size}, "
          f"batch 2, rank {args.rank}, {torch.get_num_threads()} threads, medians of {args.repeats}")
    print(f"one UNet call                    {plain * 1e3:8.2f} ms")
    print(f"one switched UNet call (W2SD)    {switched * 1e3:8.2f} ms  = {switched / plain:.3f} x a UNet call")
    print(f"one re-merge of the weights      {remerged * 1e3:8.2f} ms  = {remerged / plain:.3f} x a UNet call "
          "(what switching by re-merging would add per switch, twice per reflected step)")


if __name__ == "__main__":
    main()
