"""Stand-ins for the WebUIs, visible only to the tests that ask for them.

tests/stubs holds a stand-in for AUTOMATIC1111's `modules` (and its Lora extension's
`networks`); tests/stubs_forge one for Forge. Both are called `modules`, and the core tests
must not see either, so a stand-in is put on sys.path only while a test module that uses it
runs, and every module imported from it (plus the adapters in lib_w2sd.webui that bound to
it) is dropped from sys.modules before and after. Such test modules import the stand-in
inside fixtures or tests, never at the top (collection imports every test module first).

A test module chooses its stand-in with a module-level `STAND_IN = "stubs"` (A1111) or
`"stubs_forge"`, and uses the `stand_in` fixture (module scope) or builds on it.
"""

from __future__ import annotations

import contextlib
import os
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))


def _top_level_names(directory: str) -> set:
    names = set()
    for entry in os.listdir(directory):
        if entry.startswith((".", "_")):
            continue
        if entry.endswith(".py"):
            names.add(entry[:-3])
        elif os.path.isdir(os.path.join(directory, entry)):
            names.add(entry)
    return names


def _purge(names: set) -> None:
    """Forget the stand-in's modules and the WebUI glue that may hold references to them."""
    package = sys.modules.get("lib_w2sd.webui")
    for name in list(sys.modules):
        top = name.split(".")[0]
        if top in names or (name.startswith("lib_w2sd.webui.") and name != "lib_w2sd.webui.base"):
            del sys.modules[name]
            if package is not None and name.startswith("lib_w2sd.webui."):
                # `from lib_w2sd.webui import x` reads the package attribute before sys.modules
                vars(package).pop(name.split(".")[2], None)
    if package is not None:
        package.reset_backend()


@contextlib.contextmanager
def using_stand_in(name: str):
    """Put tests/<name> first on sys.path for the duration, with clean module caches."""
    directory = os.path.join(TESTS, name)
    names = _top_level_names(directory)
    _purge(names)
    sys.path.insert(0, directory)
    try:
        yield directory
    finally:
        sys.path.remove(directory)
        _purge(names)


@pytest.fixture(scope="module")
def stand_in(request):
    """The stand-in named by the test module's STAND_IN, active for the whole module."""
    with using_stand_in(getattr(request.module, "STAND_IN", "stubs")) as directory:
        yield directory


@pytest.fixture(autouse=True)
def _restore_k_diffusion_torch():
    """A1111's samplers (and their stand-ins) replace k_diffusion.sampling.torch with a hijack
    drawing from the generation's RNG; put the real torch back for every other test."""
    yield
    kd = sys.modules.get("k_diffusion.sampling")
    if kd is not None:
        import torch

        kd.torch = torch


@pytest.fixture(scope="module")
def a1111_box(stand_in):
    """The A1111 stand-in with scripts/w2sd.py loaded (tests/stubs/harness.py), one per module."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only cost time
    import harness

    yield harness.WebUI()
    torch.set_num_threads(threads)


@pytest.fixture
def webui(a1111_box):
    """a1111_box reset to a fresh server's state before and after the test."""
    a1111_box.reset()
    yield a1111_box
    a1111_box.reset()
