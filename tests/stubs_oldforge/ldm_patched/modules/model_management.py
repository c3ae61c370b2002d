"""Stand-in for ldm_patched/modules/model_management.py (C:1f95d717, R:3b56b268): the free memory the
samplers batch by, and load_models_gpu (recorded in `loaded`)."""

loaded = []


def get_free_memory(dev=None, torch_free_too=False):
    return 1 << 40


def load_models_gpu(models, memory_required=0):
    loaded[:] = list(models)
