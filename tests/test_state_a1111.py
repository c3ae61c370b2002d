"""GET /w2sd/v1/state on the A1111 stand-in (tests/stubs): see state_patterns.py."""

from state_patterns import state_tests

STAND_IN = "stubs"


def add_checkpoint(webui, tmp_path, name="weak.safetensors", seed=5):
    import harness
    import tiny_sd

    harness.write_checkpoint(tmp_path / name, tiny_sd.TinySD(seed=seed).unet)
    webui.register_checkpoints(tmp_path)
    return name


def weak_unet():
    from lib_w2sd.webui.adapters import checkpoint

    return checkpoint.cache.entry and checkpoint.cache.entry.module


globals().update(state_tests("a red cat <lora:style:0.8>", add_checkpoint, weak_unet))
