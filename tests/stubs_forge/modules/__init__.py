"""Stand-in for Forge's `modules` package (lllyasviel/stable-diffusion-webui-forge, dfdcbab6).

Forge's `modules` is AUTOMATIC1111's with the sampling rewired onto `backend`. The files where
Forge differs in what W2SD touches are here (processing, the CFG denoiser, the k-diffusion
sampler, sd_models, prompt_parser, shared); every other module is the A1111 stand-in's
(tests/stubs/modules), found through this package's __path__. A file here that only adds to
the A1111 stand-in's loads it with `a1111_stand_in(name)` and re-exports it.
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
        module = importlib.util.module_from_spec(spec)
        sys.modules[full_name] = module
        spec.loader.exec_module(module)
    return sys.modules[full_name]


def reexport(module, namespace):
    namespace.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
