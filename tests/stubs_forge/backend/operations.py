"""Stand-in for backend/operations.py (Forge dfdcbab6).

Kept: `get_weight_and_bias` (operations.py:14-54), which merges a layer's
`forge_online_loras` into its weight on every forward, and the Linear/Conv2d of
ForgeOperations that call it (operations.py:126-176); `using_forge_operations` builds models
with them. `merge_calls` counts the on-the-fly merges (tests measure LoRA switching with it).
"""

import contextlib

import torch

from backend.patcher.lora import merge_lora_to_weight

merge_calls = 0


def get_weight_and_bias(layer, weight_args=None, bias_args=None, weight_fn=None, bias_fn=None):
    global merge_calls
    patches = getattr(layer, "forge_online_loras", None)
    weight, bias = layer.weight, layer.bias
    if weight_args is not None:
        weight = weight.to(**weight_args)
    if patches is not None and patches.get("weight") is not None:
        merge_calls += 1
        weight = merge_lora_to_weight(patches=patches["weight"], weight=weight, key="online weight lora",
                                      computation_dtype=weight.dtype)
    if bias is not None and patches is not None and patches.get("bias") is not None:
        bias = merge_lora_to_weight(patches=patches["bias"], weight=bias, key="online bias lora",
                                    computation_dtype=bias.dtype)
    return weight, bias


class ForgeOperations:
    class Linear(torch.nn.Linear):
        parameters_manual_cast = False

        def forward(self, x):
            weight, bias = get_weight_and_bias(self)
            return torch.nn.functional.linear(x, weight, bias)

    class Conv2d(torch.nn.Conv2d):
        parameters_manual_cast = False

        def forward(self, x):
            weight, bias = get_weight_and_bias(self)
            return self._conv_forward(x, weight, bias)


@contextlib.contextmanager
def using_forge_operations(operations=None, device=None, dtype=None, manual_cast_enabled=False, bnb_dtype=None):
    """operations.py:442-467: torch.nn.Linear/Conv2d are ForgeOperations' while models are built."""
    operations = operations or ForgeOperations
    backups = {name: getattr(torch.nn, name) for name in ("Linear", "Conv2d")}
    try:
        for name in backups:
            setattr(torch.nn, name, getattr(operations, name))
        yield
    finally:
        for name, op in backups.items():
            setattr(torch.nn, name, op)


def cleanup_cache():
    pass
