"""Single UNet calls with the prompt's LoRAs at another multiplier, on Forge's first backend
(ldm_patched) as reForge (R: main 3b56b268) and Forge Classic (C: classic 1f95d717) keep it.

Their Lora extension adds a LoRA's UNet part as patches on a clone of the UNet patcher:
`patcher.patches[weight key] = [(strength_patch, value, strength_model, ...), ...]`, the
strength being the prompt's UNet multiplier (extensions-builtin/Lora/networks.py C:63-90 R:86-104,
ldm_patched/modules/sd.py load_lora_for_models, model_patcher.py add_patches C:191-200 R:502-524).
When the UNet loads, every patched weight is backed up and REPLACED by the merge of its patches
(patch_model C:225-269, patch_weight_to_device R:559-590); reForge in low-VRAM mode merges in
each layer's forward instead (LowVramPatch, R:125-, 640-648). Re-merging at another multiplier
would rewrite every LoRA weight twice per reflected step.

OldLoraSwitch never writes a weight. For one call, as each LoRA layer's forward starts, it puts on
the layer a NEW parameter holding the layer's current weight plus the prompt's patches at strength
(target - own), merged by the fork's own calculate_weight (C:model_patcher.py:271-, R:lora.py:331-), so
the layer runs W0 + m*D + (t - m)*D = W0 + t*D with the WebUI's own LoRA arithmetic (any patch type
it merges linearly); as its forward ends the layer gets back the very parameter object it had. A
switched call costs one merge of the LoRA's layers (a low-rank product and a weight-sized add per
layer), and at most one layer's switched weight exists at a time.

That is exact only for patches whose delta does not depend on the weight they are merged into
(LoRA, LoCon, LoHa, LoKr, diff): a DoRA patch rescales the merged weight and is refused, found by
merging each patch once into the weight and once into zeros before the pass (R:lora.py
weight_decompose). So are patches with a strength_model other than 1, an offset or a function.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Tuple

import torch

from ...errors import W2SDError


class LoraError(W2SDError):
    """The prompt's LoRAs cannot be switched per call; the message says why."""


def prompt_lora_patches(sd_model, unet_patcher) -> Dict[str, list]:
    """Per weight key, the patches the prompt's LoRAs added: those after the entries the checkpoint's
    own patcher (forge_objects_original.unet) carries (clones copy the lists, then append)."""
    base = sd_model.forge_objects_original.unet.patches
    added = {key: entries[len(base.get(key, ())):] for key, entries in unet_patcher.patches.items()}
    return {key: entries for key, entries in added.items() if entries}


def lora_multipliers(patches: Dict[str, list]) -> Dict[str, float]:
    """The prompt's UNet multipliers as 'LoRA at <m>' -> m (the patcher keeps no LoRA names)."""
    return {f"LoRA at {entry[0]:g}": float(entry[0]) for entries in patches.values() for entry in entries}


def weight_calculator(unet_patcher):
    """The fork's merge of a weight's patches: reForge's ldm_patched.modules.lora.calculate_weight
    (R:lora.py:331-; its ModelPatcher.calculate_weight is a shim that logs a deprecation warning on
    every call, R:model_patcher.py:868-870, over a thousand lines per generation), else Classic's
    patcher method (C:model_patcher.py:271-; its lora.py has none)."""
    from ldm_patched.modules import lora

    return getattr(lora, "calculate_weight", None) or unet_patcher.calculate_weight


def _owner(model: torch.nn.Module, key: str) -> Tuple[torch.nn.Module, str]:
    *path, name = key.split(".")
    module = model
    for part in path:
        module = getattr(module, part)
    return module, name


def _at(entry, strength: float) -> tuple:
    return (strength, entry[1], *entry[2:])


class OldLoraSwitch:
    """The prompt's LoRA patches of one UNet patcher, ready to run single calls at any multiplier."""

    def __init__(self, unet_patcher, patches: Dict[str, list]):
        self.model = unet_patcher.model
        self._calculate = weight_calculator(unet_patcher)
        self._layers: List[Tuple[torch.nn.Module, str, str, list]] = []
        for key, entries in patches.items():
            module, name = _owner(self.model, key)
            weight = module._parameters[name]
            for entry in entries:
                self._check(key, weight, entry)
            self._layers.append((module, name, key, entries))

    def __len__(self) -> int:
        return len(self._layers)

    def _check(self, key: str, weight: torch.Tensor, entry) -> None:
        if len(entry) > 2 and entry[2] != 1.0 or any(extra is not None for extra in entry[3:]):
            raise LoraError(f"a LoRA patch of {key} has a model strength, offset or function, which W2SD cannot "
                            "switch per call on merged weights; leave weak_lora_multiplier empty")
        base = weight.detach().to(torch.float32)
        into_weight = self._calculate([_at(entry, 1.0)], base.clone(), key) - base
        into_zeros = self._calculate([_at(entry, 1.0)], torch.zeros_like(base), key)
        scale = float(into_zeros.abs().max()) if into_zeros.numel() else 0.0
        if not torch.allclose(into_weight, into_zeros, rtol=1e-3, atol=1e-5 * max(scale, 1.0)):
            raise LoraError(f"a LoRA patch of {key} depends on the weight it is merged into (DoRA), which W2SD "
                            "cannot switch per call; leave weak_lora_multiplier empty")

    @contextlib.contextmanager
    def applied(self, multiplier: float) -> Iterator[None]:
        """Run the enclosed calls with every prompt LoRA at `multiplier`: each LoRA layer gets its
        switched parameters for its own forward only (so at most one layer's switched weights exist
        at a time), then its own parameter objects back; all hooks are gone afterwards."""
        swapped: Dict[int, list] = {}  # id(module) -> [(name, own parameter)] while its forward runs

        def before(module, args):
            with torch.no_grad():
                own = []
                for name, key, entries in by_module[id(module)][1]:
                    weight = module._parameters[name]
                    merged = self._calculate([_at(e, multiplier - e[0]) for e in entries],
                                             weight.detach().to(torch.float32, copy=True), key)
                    own.append((name, weight))
                    module._parameters[name] = torch.nn.Parameter(merged.to(weight.dtype), requires_grad=False)
                swapped[id(module)] = own

        def after(module, args, output):
            for name, weight in swapped.pop(id(module), ()):
                module._parameters[name] = weight

        by_module: Dict[int, tuple] = {}
        for module, name, key, entries in self._layers:
            by_module.setdefault(id(module), (module, []))[1].append((name, key, entries))
        handles = []
        try:
            for module, _ in by_module.values():
                handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
            yield
        finally:
            for handle in handles:
                handle.remove()
            for module_id, own in swapped.items():  # a forward that raised midway
                for name, weight in own:
                    by_module[module_id][0]._parameters[name] = weight
