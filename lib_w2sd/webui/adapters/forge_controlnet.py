"""The units of Forge's built-in ControlNet in single UNet calls. Written against
lllyasviel/stable-diffusion-webui-forge main (commit dfdcbab6): backend/patcher/controlnet.py,
backend/patcher/unet.py, backend/sampling/sampling_function.py,
extensions-builtin/sd_forge_controlnet/scripts/controlnet.py, modules_forge/supported_controlnet.py
and extensions-builtin/sd_forge_ipadapter.

How Forge runs the units:
- The ControlNet script applies each enabled unit in its process_before_every_sampling
  (controlnet.py:425-510, 559-563). A ControlNet, T2I-Adapter or Control-LoRA unit becomes a copy of
  its control model with `strength` = the unit's weight, put at the head of the UNet patcher's
  `controlnet_linked_list` (supported_controlnet.py:148-166; patcher/controlnet.py:68-83;
  unet.py:68-79).
- sampling_function reads that list from `forge_objects.unet` on every call (sampling_function.py:
  325-357); each node runs its control model and adds the result times `strength`
  (patcher/controlnet.py:230-279, 292-339).
- An IP-Adapter unit adds CrossAttentionPatch objects to the patcher's model_options
  (IPAdapterPlus.py:161-171, 369-395), each with one weight per IP-Adapter unit in `weights`, read
  on every call (IPAdapterPlus.py:397-479).

One call at multiplier m: every node's strength and every IP-Adapter weight times m, put back
afterwards. At 0 the patcher's linked list is None for the call (no control model runs, the UNet is
called without control as in a generation without units) and the IP-Adapter weights are 0 (its
attention still runs, times 0). Not switched: reference-only and the other preprocessors that patch
the UNet with their weight built into closures (forge_reference.py:50-191); they act in both calls.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List


def _nodes(unet_patcher) -> List:
    """The linked list's nodes (UnetPatcher.list_controlnets, unet.py:73-79)."""
    nodes, node = [], getattr(unet_patcher, "controlnet_linked_list", None)
    while node is not None:
        nodes.append(node)
        node = node.previous_controlnet
    return nodes


def _ip_adapter_patches(unet_patcher) -> List:
    """sd_forge_ipadapter's cross-attention patches on the patcher (one per attention layer)."""
    options = getattr(unet_patcher, "model_options", {}).get("transformer_options", {})
    patches = options.get("patches_replace", {}).get("attn2", {}).values()
    return [patch for patch in patches if isinstance(getattr(patch, "weights", None), list)]


def units(unet_patcher) -> int:
    """ControlNet-family units plus IP-Adapter units acting on the patcher's calls."""
    adapters = max((len(patch.weights) for patch in _ip_adapter_patches(unet_patcher)), default=0)
    return len(_nodes(unet_patcher)) + adapters


@contextlib.contextmanager
def multiplier(unet_patcher, multiplier: float) -> Iterator[None]:
    """The enclosed calls of `unet_patcher` with every unit's weight times `multiplier` (0: no control)."""
    head = unet_patcher.controlnet_linked_list
    nodes = [(node, node.strength) for node in _nodes(unet_patcher)]
    adapters = [(patch, patch.weights) for patch in _ip_adapter_patches(unet_patcher)]
    try:
        for node, strength in nodes:
            node.strength = strength * multiplier
        for patch, weights in adapters:
            patch.weights = [weight * multiplier for weight in weights]
        if multiplier == 0:
            unet_patcher.controlnet_linked_list = None
        yield
    finally:
        unet_patcher.controlnet_linked_list = head
        for node, strength in nodes:
            node.strength = strength
        for patch, weights in adapters:
            patch.weights = weights
