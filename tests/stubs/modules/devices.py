"""Stand-in for modules/devices.py (A1111 v1.10.1, 82a973c0): CPU, float32, no autocast."""

import contextlib

import torch

cpu = torch.device("cpu")
device = device_interrogate = device_gfpgan = device_esrgan = device_codeformer = cpu
dtype = dtype_vae = dtype_unet = dtype_inference = torch.float32
unet_needs_upcast = False
fp8 = False


def get_optimal_device_name():
    return "cpu"


def get_optimal_device():
    return cpu


def torch_gc():
    pass


def autocast(disable=False):
    return contextlib.nullcontext()


def without_autocast(disable=False):
    return contextlib.nullcontext()


def cond_cast_unet(tensor):
    return tensor


def test_for_nans(x, where):
    if torch.isnan(x).any():
        raise RuntimeError(f"NaN in {where}")
