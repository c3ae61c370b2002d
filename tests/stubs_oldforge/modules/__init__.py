"""Stand-in for the `modules` package of the forks that kept Forge's first backend: reForge
(Panchovix/stable-diffusion-webui-reForge, main 3b56b268) and Forge Classic
(Haoming02/sd-webui-forge-classic, branch classic 1f95d717).

Their `modules` are AUTOMATIC1111's with sampling handed to ldm_patched through modules_forge. The
files where they differ in what W2SD touches are here (processing, the CFG denoiser, the k-diffusion
sampler, shared); every other module is the A1111 stand-in's (tests/stubs/modules), found through
this package's __path__. Which fork it plays is modules_forge.forge_version.version (the harness sets
"classic" for Forge Classic): the files here follow the fork's own code where the two differ.
"""

import importlib.util
import os
import sys

_A1111 = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "stubs", "modules")
__path__.append(_A1111)


def a1111_stand_in(name):
    """The A1111 stand-in's modules/<name>.py as the private module modules._a1111_<name>."""
    full_name = f"{__name__}._a1111_{name}"
    if full_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(full_name, os.path.join(_A1111, name + ".py"))
        sys.modules[full_name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[full_name]


def is_classic() -> bool:
    """The stand-in plays Forge Classic (else reForge)."""
    from modules_forge import forge_version

    return forge_version.version == "classic"
