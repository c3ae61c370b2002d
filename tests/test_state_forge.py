"""GET /w2sd/v1/state on the Forge stand-in (tests/stubs_forge): see state_patterns.py."""

from state_patterns import state_tests

STAND_IN = "stubs_forge"


def add_checkpoint(webui, tmp_path):
    webui.add_checkpoint("weak.safetensors", seed=5)
    return "weak.safetensors"


globals().update(state_tests("a red cat <lora:style:0.8>", add_checkpoint))
