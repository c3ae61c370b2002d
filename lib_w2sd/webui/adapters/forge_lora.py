"""Running single UNet calls with the prompt's LoRAs at another multiplier, on Forge's LoRA patching.

Forge applies a prompt's LoRAs as patches on a clone of the UNet patcher:
`unet.lora_patches[(filename, strength, strength_model, online_mode)] = {param: [patch, ...]}`
with each patch `[strength, value, strength_model, offset, function]` (backend/patcher/base.py:91-117).
Normally they are MERGED into the weights when the patcher loads (LoraLoader.refresh,
backend/patcher/lora.py:351-447); re-merging at another multiplier restores every patched weight
from its CPU backup, far too slow for two switches per reflected step. With --online-lora
(fp8/nf4/gguf UNets only) they stay as `layer.forge_online_loras[child] = [patch, ...]` and every
Forge Linear/Conv merges them in its forward (backend/operations.py:14-54).

LoraSwitch uses that online path for one call at a time and never touches a weight:
  merged LoRA  -> the layer gets a DELTA patch at strength (target - own multiplier): the call
                  sees W0 + m*D + (t - m)*D = W0 + t*D;
  online LoRA  -> its patches are replaced by the same patches at strength t.
Afterwards each touched layer gets back its `forge_online_loras` exactly as it was (the same
dict object, or no attribute), so the restoration is exact by construction. A switched call
costs one low-rank product and one weight-sized add per LoRA layer.

Delta patches are only right where a patch is linear in its strength (and scales no weight);
a merged DoRA or 'set' patch is not, and is refused with a clear error (online ones are fine).
"""

from __future__ import annotations

import contextlib
import os
from typing import Dict, Iterator, Tuple

import torch

from ...errors import W2SDError

LINEAR_PATCH_TYPES = ("diff", "lora", "loha", "lokr", "glora")
# Where each patch type keeps its DoRA scale (backend/patcher/lora.py:148, 190, 219, 233).
_DORA_INDEX = {"lora": 4, "lokr": 8, "loha": 7, "glora": 5}


class LoraError(W2SDError):
    """The prompt's LoRAs cannot be switched per call; the message says why."""


def prompt_lora_patches(sd_model, unet_patcher) -> Dict[tuple, dict]:
    """The LoRA patch sets the prompt added: those on `unet_patcher` that the checkpoint's own
    UNet patcher (`forge_objects_original.unet`) does not carry (sd_forge_lora networks.py:117-126)."""
    base = sd_model.forge_objects_original.unet.lora_patches
    return {key: patches for key, patches in unet_patcher.lora_patches.items() if key not in base}


def lora_multipliers(patch_sets: Dict[tuple, dict]) -> Dict[str, float]:
    """Name -> UNet multiplier of each LoRA, from its patch-set key (filename, strength, strength_model,
    online)."""
    return {_name(key[0]): key[1] for key in patch_sets}


def _name(filename) -> str:
    return os.path.splitext(os.path.basename(str(filename)))[0]


def _patch_type(value) -> Tuple[str, tuple]:
    """merge_lora_to_weight's reading of a patch value (backend/patcher/lora.py:113-122)."""
    if isinstance(value, list):
        return "diff", value  # a nested patch list merges to a difference (lora.py:113-114)
    if len(value) == 1:
        return "diff", value
    return value[0], value[1]


def _is_linear(value) -> bool:
    kind, inner = _patch_type(value)
    if kind not in LINEAR_PATCH_TYPES:
        return False
    index = _DORA_INDEX.get(kind)
    return index is None or len(inner) <= index or inner[index] is None


def _to_device(value, device):
    """A copy of a patch value with its tensors on `device` (the loaded value is left alone)."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to_device(v, device) for v in value)
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    return value


class LoraSwitch:
    """The prompt's LoRAs of one UNet patcher, ready to be put at any multiplier for single calls."""

    def __init__(self, unet_patcher, patch_sets: Dict[tuple, dict], device=None):
        from backend import utils  # Forge's attribute-path helpers

        self.model = unet_patcher.model
        device = device if device is not None else unet_patcher.load_device
        # (layer, child) -> [(online, own multiplier, patch, patch with tensors on the device)]
        self._layers: Dict[Tuple[int, str], tuple] = {}
        for (filename, _, _, online), patches in patch_sets.items():
            for key, entries in patches.items():
                parent, child, _ = utils.get_attr_with_parent(self.model, key)
                for entry in entries:
                    if not online and not (_is_linear(entry[1]) and entry[2] == 1.0):
                        raise LoraError(
                            f"the LoRA {_name(filename)!r} patches {key} with DoRA or a "
                            "non-linear patch, which W2SD cannot switch per call on merged weights; start Forge "
                            "with --online-lora and an fp8/nf4 UNet, or leave weak_lora_multiplier empty")
                    moved = entry if online else [entry[0], _to_device(entry[1], device), *entry[2:]]
                    layer = self._layers.setdefault((id(parent), child), (parent, child, []))
                    layer[2].append((online, entry, moved))
        self._cache: Dict[float, Dict[Tuple[int, str], list]] = {}

    def __len__(self) -> int:
        return len(self._layers)

    def _patches_at(self, multiplier: float) -> Dict[Tuple[int, str], list]:
        """Per layer: the patches to ADD (merged LoRAs' deltas, online LoRAs at `multiplier`)."""
        if multiplier not in self._cache:
            self._cache[multiplier] = {
                key: [[multiplier if online else multiplier - entry[0], moved[1], *moved[2:]]
                      for online, entry, moved in entries]
                for key, (_, _, entries) in self._layers.items()
            }
        return self._cache[multiplier]

    @contextlib.contextmanager
    def applied(self, multiplier: float) -> Iterator[None]:
        """Run the enclosed calls with every prompt LoRA at `multiplier`; restore exactly."""
        missing = object()
        saved = []
        try:
            for key, added in self._patches_at(multiplier).items():
                parent, child, entries = self._layers[key]
                old = parent.__dict__.get("forge_online_loras", missing)
                saved.append((parent, old))
                own_online = {id(entry) for online, entry, _ in entries if online}
                current = {} if old is missing else dict(old)
                kept = [e for e in current.get(child, []) if id(e) not in own_online]
                current[child] = kept + added
                parent.forge_online_loras = current
            yield
        finally:
            for parent, old in reversed(saved):
                if old is missing:
                    parent.__dict__.pop("forge_online_loras", None)
                else:
                    parent.forge_online_loras = old
