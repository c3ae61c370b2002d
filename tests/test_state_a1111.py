"""GET /w2sd/v1/state on the A1111 stand-in (tests/stubs): see state_patterns.py."""

from state_patterns import state_tests

STAND_IN = "stubs"


def add_checkpoint(webui, tmp_path):
    import harness
    import tiny_sd

    harness.write_checkpoint(tmp_path / "weak.safetensors", tiny_sd.TinySD(seed=5).unet)
    webui.register_checkpoints(tmp_path)
    return "weak.safetensors"


globals().update(state_tests("a red cat <lora:style:0.8>", add_checkpoint))
