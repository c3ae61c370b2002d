"""Stand-in for backend/utils.py (Forge dfdcbab6): attribute paths and the state-dict reader."""

import safetensors.torch
import torch


def load_torch_file(ckpt, safe_load=False, device=None):
    """utils.py:22-47. The real one unpickles anything that is not .safetensors/.gguf; the
    stand-in refuses, so a test that reaches it with a pickle fails loudly."""
    if device is None:
        device = torch.device("cpu")
    if ckpt.lower().endswith(".safetensors"):
        return safetensors.torch.load_file(ckpt, device=device.type)
    raise AssertionError(f"stand-in: would unpickle {ckpt}")


def set_attr_raw(obj, attr, value):
    attrs = attr.split(".")
    for name in attrs[:-1]:
        obj = getattr(obj, name)
    setattr(obj, attrs[-1], value)


def get_attr(obj, attr):
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


def get_attr_with_parent(obj, attr):
    parent, name = obj, None
    for name in attr.split("."):
        parent = obj
        obj = getattr(obj, name)
    return parent, name, obj


def tensor2parameter(x):
    return x if isinstance(x, torch.nn.Parameter) else torch.nn.Parameter(x, requires_grad=False)


def dtype_to_element_size(dtype):
    return torch.tensor([], dtype=dtype).element_size()


def nested_compute_size(obj, element_size):
    if isinstance(obj, dict):
        return sum(nested_compute_size(v, element_size) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nested_compute_size(v, element_size) for v in obj)
    if isinstance(obj, torch.Tensor):
        return obj.nelement() * element_size
    return 0


def nested_move_to_device(obj, **kwargs):
    if isinstance(obj, dict):
        for key in obj:
            obj[key] = nested_move_to_device(obj[key], **kwargs)
    elif isinstance(obj, list):
        for i in range(len(obj)):
            obj[i] = nested_move_to_device(obj[i], **kwargs)
    elif isinstance(obj, tuple):
        obj = tuple(nested_move_to_device(i, **kwargs) for i in obj)
    elif isinstance(obj, torch.Tensor):
        return obj.to(**kwargs)
    return obj
