"""Costs of W2SD's WebUI glue, measured on the A1111 stand-in (tests/stubs) on the CPU.

    PYTHONPATH=. python tools/bench_webui.py [--channels 192 --blocks 6 --size 256 --steps 8]

The stand-in runs A1111 1.10's sampling code paths (CFG denoiser, functional-LoRA forward,
lazy LoRA merging) around a UNet-shaped stack of 3x3 convolutions, each carrying a LoRA, so
the ratios reflect the mechanisms, not a real SD UNet's absolute speed. Prints:

0. per weak kind and preset: the extra UNet rows and UNet calls of one reflected step (a plain CFG
   step is 2 rows in 1 call), counted, and the generation's time W2SD / plain, measured side by
   side (alternating runs, medians);
1. weak CFG 1.0: UNet rows and time of a weak call vs the sampler's own call;
2. LoRA difference: a reflected step with a LoRA difference vs one with a CFG difference
   (both full batches), the functional mode's cost on ordinary steps, and what switching by
   re-merging (A1111's default mode) would cost instead, each against one UNet evaluation.
   The stand-in's LoRA sits on every convolution and its small convolutions make the
   functional forward look dear on the CPU, while its re-merge touches only LoRA layers; the
   real Lora extension restores EVERY UNet layer from its CPU backup at each switch
   (networks.py:411-470), so on real A1111 functional mode wins even on the CPU (measured
   through the API: LoRA-difference step 0.78x a CFG-difference one, re-merging 1.27x);
3. weak checkpoint: bytes of the weak UNet vs the model's UNet, and the process's resident
   memory growth while loading it.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests", "stubs"), os.path.join(ROOT, "tests"), ROOT]

import harness  # noqa: E402
import networks  # noqa: E402
import tiny_sd  # noqa: E402
import torch  # noqa: E402
from webui_patterns import unet_batches  # noqa: E402


class BenchUNet(tiny_sd.TinyUNet):
    """TinyUNet with `blocks` CxC convolutions in the middle: most time and weights are there."""

    def __init__(self, channels, blocks, seed=0):
        super().__init__(channels=channels, seed=seed)
        self.blocks = torch.nn.ModuleList(networks.LoraConv2d(channels, channels, 3, padding=1) for _ in range(blocks))
        self.requires_grad_(False)

    def forward(self, x, timesteps=None, context=None, **kwargs):
        start = time.perf_counter()
        freqs = torch.arange(4, dtype=torch.float32) + 1
        t = timesteps.float()[:, None] / 1000 * freqs
        temb = torch.cat([t.sin(), t.cos()], dim=1)
        h = self.input(x) + self.time(temb)[:, :, None, None] + self.context(context.mean(1))[:, :, None, None]
        for block in self.blocks:
            h = h + block(torch.tanh(h)) * 0.1
        out = self.output(torch.tanh(h)) * 0.5
        self.calls.append((x.shape[0], time.perf_counter() - start))
        return out


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(webui, w2sd, **kwargs):
    unet = webui.model.model.diffusion_model
    unet.calls.clear()
    start = time.perf_counter()
    result = webui.generate(w2sd, **kwargs)
    total = time.perf_counter() - start
    return result, total, [(role, rows, s) for role, (rows, s) in unet_batches(result.calls, list(unet.calls))]


def mean(values):
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=192)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--size", type=int, default=256, help="image side in pixels (latent = size / 8)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--rounds", type=int, default=5, help="alternating plain / W2SD runs per kind (medians)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    webui = harness.WebUI()
    webui.model.model.diffusion_model = BenchUNet(args.channels, args.blocks)
    webui.reset()
    common = dict(steps=args.steps, width=args.size, height=args.size)
    every = {"enabled": True, "reflect_steps": 1.0}
    reflected = args.steps - 1
    webui.generate(None, **common)  # warm-up

    cost_per_kind(webui, common, rounds=args.rounds)

    # 1. weak CFG 1.0
    _, _, calls = timed(webui, {**every, "weak_cfg": 1.0, "weak_sigma": "next"}, **common)
    own = [(r, s) for role, r, s in calls if role is None]
    weak = [(r, s) for role, r, s in calls if role == "weak"]
    print("1. weak CFG 1.0 in a call of its own (weak_sigma 'next'; 'start' shares the strong call's batch)")
    print(f"   UNet rows per call: weak {weak[0][0]}, own {own[0][0]}")
    print(f"   time of a weak call / own call: {mean(s for _, s in weak) / mean(s for _, s in own):.2f}")

    # 2. LoRA difference vs CFG difference
    webui.add_lora("bench", scale=0.05)
    prompt = "a red cat <lora:bench:0.8>"
    _, t_plain, plain_calls = timed(webui, None, prompt=prompt, **common)
    _, t_cfg, _ = timed(webui, {**every, "weak_cfg": 3.0}, prompt=prompt, **common)
    lora = {**every, "weak_lora_multiplier": -1.5, "strong_lora_multiplier": 1.5}
    _, t_lora, lora_calls = timed(webui, lora, prompt=prompt, **common)
    unet_eval = mean(s for role, _, s in plain_calls)
    step_cfg, step_lora = (t_cfg - t_plain) / reflected, (t_lora - t_plain) / reflected
    own_functional = mean(s for role, _, s in lora_calls if role is None)
    print("2. LoRA difference (functional LoRA while reflecting)")
    print(f"   one UNet evaluation (batch 2, merged LoRA): {unet_eval * 1000:.1f} ms")
    print(f"   extra time per reflected step: CFG difference {step_cfg * 1000:.1f} ms, "
          f"LoRA difference {step_lora * 1000:.1f} ms, ratio {step_lora / step_cfg:.2f}")
    print(f"   switching cost per reflected step vs one UNet evaluation: "
          f"{(step_lora - step_cfg) / unet_eval:+.2f} (includes the functional forward of 2 extra calls)")
    print(f"   ordinary step in functional mode / merged: {own_functional / unet_eval:.2f}")
    print(f"   whole generation: LoRA difference / CFG difference: {t_lora / t_cfg:.2f}")
    remerge = remerge_cost(webui, prompt, common)
    print(f"   for comparison, one switch by re-merging (A1111's default mode): {remerge * 1000:.1f} ms "
          f"= {remerge / unet_eval:.2f} UNet evaluations; a reflected step needs 3 switches")

    # 3. weak checkpoint memory
    from lib_w2sd.webui.adapters import checkpoint

    networks.loaded_networks.clear()
    with tempfile.TemporaryDirectory() as directory:
        weak_file = os.path.join(directory, "weak.safetensors")
        harness.write_checkpoint(weak_file, BenchUNet(args.channels, args.blocks, seed=5))
        webui.register_checkpoints(directory)
        checkpoint.cache.clear()
        before_rss, before_peak = rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        webui.generate({"enabled": True, "weak_checkpoint": "weak.safetensors", "reflect_steps": 0.5}, **common)
        after_rss, after_peak = rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        weak_bytes = checkpoint.module_bytes(checkpoint.cache.entry.module)
        model_bytes = checkpoint.module_bytes(webui.model.model.diffusion_model)
        file_bytes = os.path.getsize(os.path.join(directory, "weak.safetensors"))
    print("3. weak checkpoint")
    print(f"   weak UNet {weak_bytes} bytes, model UNet {model_bytes} bytes (ratio {weak_bytes / model_bytes:.3f}); "
          f"file {file_bytes} bytes")
    grown, peak = after_rss - before_rss, max(0, after_peak - before_peak)
    print(f"   resident memory after / before the generation: +{grown} bytes ({grown / weak_bytes:.2f} weak UNets); "
          f"peak grew by {peak} bytes ({peak / weak_bytes:.2f} weak UNets)")


LORA_PROMPT = "a red cat <lora:bench:0.8>"
HALF = {"enabled": True, "reflect_steps": 0.5}
# name -> (W2SD settings, prompt): the presets as the UI sets them, and each weak kind alone.
KINDS = {
    "preset Z-Sampling (CFG gap)": ({**HALF, "preset": "Z-Sampling (CFG gap)"}, None),
    "weak CFG 3": ({**HALF, "weak_cfg": 3.0}, None),
    "preset Prompt refinement": ({**HALF, "preset": "Prompt refinement", "weak_prompt": "a cat"}, None),
    "weak prompt + CFG 1": ({**HALF, "weak_cfg": 1.0, "weak_prompt": "a cat"}, None),
    "weak negative prompt": ({**HALF, "weak_negative_prompt": "sharp"}, None),
    "weak prompt + negative": ({**HALF, "weak_prompt": "a cat", "weak_negative_prompt": "sharp"}, None),
    "LoRA -1.5/+1.5": ({**HALF, "weak_lora_multiplier": -1.5, "strong_lora_multiplier": 1.5}, LORA_PROMPT),
    "preset Paper defaults": ({**HALF, "preset": "Paper defaults (LoRA +1.5/-1.5, CFG 5.5/1.0)"}, LORA_PROMPT),
    "preset Checkpoint pair": ({**HALF, "preset": "Checkpoint pair", "weak_checkpoint": "weak.safetensors"}, None),
}


def cost_per_kind(webui, common, rounds):
    """Rows and calls of the model's UNet (and the weak checkpoint's) per reflected step, and the
    time ratio W2SD / plain, per kind."""
    from lib_w2sd.webui.adapters import checkpoint

    print("0. cost of one reflected step (a plain CFG step: 2 rows in 1 call) and time W2SD / plain")
    print(f"   {'kind':28s} {'extra rows':>10s} {'extra calls':>11s} {'time ratio':>10s}  (median of {rounds})")
    with tempfile.TemporaryDirectory() as directory:
        strong_unet = webui.model.model.diffusion_model
        harness.write_checkpoint(os.path.join(directory, "weak.safetensors"), BenchUNet(
            strong_unet.input.out_channels, len(strong_unet.blocks), seed=5))
        webui.register_checkpoints(directory)
        webui.add_lora("bench", scale=0.05)
        for name, (w2sd, prompt) in KINDS.items():
            kwargs = dict(common, prompt=prompt) if prompt else dict(common)
            ratios, counts = [], None
            for _ in range(rounds):  # the counts of the last round: the weak UNet's list starts clean there
                _, t_plain, plain_calls = timed(webui, None, **kwargs)
                if checkpoint.cache.entry is not None:
                    checkpoint.cache.entry.module.calls.clear()
                result, t_w2sd, w2sd_calls = timed(webui, w2sd, **kwargs)
                weak = checkpoint.cache.entry.module.calls if checkpoint.cache.entry is not None else []
                reflected = int(result.infotext.split("W2SD reflected: ")[1].split("/")[0])
                rows = sum(r for _, r, _ in w2sd_calls) + sum(r for r, _ in weak) - sum(r for _, r, _ in plain_calls)
                calls = len(w2sd_calls) + len(weak) - len(plain_calls)
                counts = (rows / reflected, calls / reflected)
                ratios.append(t_w2sd / t_plain)
            print(f"   {name:28s} {counts[0]:10.1f} {counts[1]:11.1f} {statistics.median(ratios):10.2f}")
        networks.loaded_networks.clear()
        networks.available_networks.clear()
        checkpoint.cache.clear()


def remerge_cost(webui, prompt, common) -> float:
    """Time of one multiplier change in merged mode: restore + re-merge every LoRA layer, which
    the next forward does lazily (measured as forward-after-switch minus forward)."""
    from modules import extra_networks

    unet = webui.model.model.diffusion_model
    extra_networks.activate(None, extra_networks.parse_prompt(prompt)[1])
    net = networks.loaded_networks[0]
    x = torch.randn(2, 4, common["height"] // 8, common["width"] // 8)
    t = torch.full((2,), 500)
    context = torch.randn(2, tiny_sd.TOKENS, tiny_sd.WIDTH)
    with torch.no_grad():
        unet(x, t, context)
        plain, switched = [], []
        for multiplier in (1.5, -1.5, 0.8, 1.5, -1.5, 0.8):
            start = time.perf_counter()
            unet(x, t, context)
            plain.append(time.perf_counter() - start)
            net.unet_multiplier = multiplier
            start = time.perf_counter()
            unet(x, t, context)
            switched.append(time.perf_counter() - start)
    return mean(switched) - mean(plain)


if __name__ == "__main__":
    main()
