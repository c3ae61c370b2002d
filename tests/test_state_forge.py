"""GET /w2sd/v1/state on the Forge stand-in (tests/stubs_forge): see state_patterns.py."""

from state_patterns import state_tests

STAND_IN = "stubs_forge"


def add_checkpoint(webui, tmp_path, name="weak.safetensors", seed=5):
    webui.add_checkpoint(name, seed=seed)
    return name


def weak_unet():
    from lib_w2sd.webui.adapters import forge_unet

    return forge_unet.cache.entry and forge_unet.cache.entry.patcher.model


globals().update(state_tests("a red cat <lora:style:0.8>", add_checkpoint, weak_unet))
