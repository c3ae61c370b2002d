"""A second UNet for the weak model: read from a .safetensors checkpoint into a copy of the
loaded UNet, cached across generations, kept per the memory policy. Plain torch: the
adapters give it the WebUI's UNet module and the file the WebUI's checkpoint list names.

Only the UNet's tensors are read (safetensors' lazy safe_open, one tensor at a time), straight
into a copy of the loaded UNet whose parameters were never filled from the original: the weak
model costs one UNet of memory, with no full-checkpoint state dict in between. Pickled
checkpoints (.ckpt, .pt, .bin) are refused before the file is opened.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

from ...errors import W2SDError

UNET_PREFIX = "model.diffusion_model."
MEMORY_POLICIES = ("gpu", "offload", "unload")
# Attributes other code hangs on UNet layers: LoRA bookkeeping (A1111's Lora extension merges
# into any layer with a network_layer_name) and fp8's fp16 copies. The weak copy drops them.
_FOREIGN_PREFIXES = ("network_", "fp16_")
# Other code's hooks on the loaded UNet (a `forward` set on the instance, forward hooks:
# ControlNet, token merging, low-VRAM offloading) reach back to the original; the copy runs
# plain, as the UNet of the checkpoint alone.
_INSTANCE_OVERRIDES = ("forward", "_original_forward")
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
               "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")


class CheckpointError(W2SDError):
    """The weak checkpoint cannot be used; the message says why and what to do."""


def check_safetensors(name: str, filename: str) -> None:
    if os.path.splitext(filename)[1].lower() != ".safetensors":
        raise CheckpointError(
            f"weak_checkpoint {name!r} is not a .safetensors file; W2SD never loads pickled checkpoints "
            "(.ckpt, .pt): convert it to .safetensors or pick another checkpoint")
    if not os.path.isfile(filename):
        raise CheckpointError(f"weak_checkpoint {name!r}: the file {os.path.basename(filename)} is missing")


def unet_shapes(filename: str) -> Dict[str, Tuple[int, ...]]:
    """The shapes of the checkpoint's UNet tensors (keys without the prefix), read from the header."""
    from safetensors import safe_open

    with safe_open(filename, framework="pt", device="cpu") as f:
        return {k[len(UNET_PREFIX):]: tuple(f.get_slice(k).get_shape()) for k in f.keys() if k.startswith(UNET_PREFIX)}


def architecture_difference(expected: Dict[str, Tuple[int, ...]], found: Dict[str, Tuple[int, ...]]) -> Optional[str]:
    """None when `found` fits a UNet with the `expected` tensors, else a short explanation."""
    if not found:
        return f"it has no UNet tensors under '{UNET_PREFIX}' (a VAE, a LoRA or a diffusers-format file?)"
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if not (missing or extra or reshaped):
        return None
    parts = []
    if reshaped:
        k = reshaped[0]
        hint = " (an inpainting UNet takes 9 input channels, a normal one 4)" if k == "input_blocks.0.0.weight" else ""
        parts.append(f"{k} is {list(found[k])} there but {list(expected[k])} in the loaded model{hint}")
    if missing:
        parts.append(f"{len(missing)} tensors of the loaded UNet are missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} tensors are not in the loaded UNet (e.g. {extra[0]})")
    return "; ".join(parts)


def empty_copy(unet: torch.nn.Module, device) -> torch.nn.Module:
    """A copy of `unet` whose state_dict tensors are new, uninitialised tensors on `device` (so
    copying never duplicates the original's weights), without foreign attributes and hooks."""
    memo = {}
    for tensor in unet.state_dict(keep_vars=True).values():
        new = torch.empty_like(tensor, device=device)
        is_parameter = isinstance(tensor, torch.nn.Parameter)
        memo[id(tensor)] = torch.nn.Parameter(new, requires_grad=False) if is_parameter else new
    for module in unet.modules():
        for name, value in vars(module).items():
            if name.startswith(_FOREIGN_PREFIXES) and isinstance(value, torch.Tensor):
                memo[id(value)] = None  # dropped below: do not copy it first
    clone = copy.deepcopy(unet, memo)
    for module in clone.modules():
        for name in [n for n in vars(module) if n.startswith(_FOREIGN_PREFIXES) or n in _INSTANCE_OVERRIDES]:
            delattr(module, name)
        for hooks in _HOOK_DICTS:
            getattr(module, hooks, {}).clear()
    return clone


def load_unet_into(clone: torch.nn.Module, filename: str) -> None:
    """Fill every state_dict tensor of `clone` from the checkpoint, one tensor at a time."""
    from safetensors import safe_open

    targets = clone.state_dict(keep_vars=True)
    with safe_open(filename, framework="pt", device="cpu") as f, torch.no_grad():
        for key, target in targets.items():
            target.copy_(f.get_tensor(UNET_PREFIX + key))


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


@dataclass
class WeakUNet:
    """A handle: the weak checkpoint's UNet and what it was made from."""

    name: str
    key: tuple
    module: torch.nn.Module


class WeakUNetCache:
    """At most one weak UNet, reused while the file (path, size, mtime, hash) and the loaded
    UNet's structure stay the same."""

    def __init__(self):
        self.entry: Optional[WeakUNet] = None

    def get(self, name: str, filename: str, file_hash: str, unet: torch.nn.Module, device) -> WeakUNet:
        check_safetensors(name, filename)
        stat = os.stat(filename)
        key = (os.path.abspath(filename), stat.st_size, stat.st_mtime_ns, file_hash, _structure(unet))
        if self.entry is not None and self.entry.key == key:
            self.entry.module.to(device)
            return self.entry
        self.clear()  # free the old weak UNet before building the new one
        expected = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
        difference = architecture_difference(expected, unet_shapes(filename))
        if difference:
            raise CheckpointError(f"weak_checkpoint {name!r} does not fit the loaded model's UNet: {difference}")
        clone = empty_copy(unet, device)
        load_unet_into(clone, filename)
        self.entry = WeakUNet(name=name, key=key, module=clone.eval())
        return self.entry

    def release(self, policy: str, generation_ended: bool, offload_device) -> None:
        """Apply the memory policy (see base.Backend.release_unets)."""
        if self.entry is None or not generation_ended or policy == "gpu":
            return
        if policy == "unload":
            self.clear()
        else:
            self.entry.module.to(offload_device)

    def clear(self) -> None:
        self.entry = None

    def describe(self) -> str:
        if self.entry is None:
            return "empty"
        return f"{self.entry.name} on {next(self.entry.module.parameters()).device}"


def _structure(unet: torch.nn.Module) -> tuple:
    """What a weak copy depends on besides the file: the loaded UNet's class, dtypes and shapes."""
    tensors = unet.state_dict()
    return (type(unet).__qualname__, len(tensors), tuple(sorted({str(t.dtype) for t in tensors.values()})),
            sum(t.numel() for t in tensors.values()))


# The one cache of this process; release_all() frees it (a UI button or API call may call it).
cache = WeakUNetCache()


def release_all() -> None:
    cache.clear()
