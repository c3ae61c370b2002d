"""The WebUI stand-ins stay out of every test that did not ask for one (tests/conftest.py)."""

import importlib.util
import sys


def test_no_stand_in_is_importable_here():
    assert "modules" not in sys.modules
    assert "networks" not in sys.modules
    assert importlib.util.find_spec("modules") is None


def test_core_never_imports_the_webui():
    import lib_w2sd  # noqa: F401
    import lib_w2sd.webui  # noqa: F401  (the package itself only detects; adapters import modules)

    assert "modules" not in sys.modules
