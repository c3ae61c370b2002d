"""W2SD inside a WebUI: the only package that imports the WebUI's `modules`.

detect_backend() tells AUTOMATIC1111 from Forge at run time and returns the adapter (see
base.Backend for the questions an adapter answers; common.py for what is shared).
"""

from __future__ import annotations

import importlib.util
from typing import Optional

from .base import Backend

_backend: Optional[Backend] = None


def is_forge() -> bool:
    """Forge ships the packages `backend` and `modules_forge`; A1111 has neither."""
    return importlib.util.find_spec("modules_forge") is not None


def detect_backend() -> Backend:
    """The adapter of the WebUI this process runs in (made once, then reused)."""
    global _backend
    if _backend is None:
        if is_forge():
            from .adapters.forge import ForgeBackend

            _backend = ForgeBackend()
        else:
            from .adapters.a1111 import A1111Backend

            _backend = A1111Backend()
    return _backend


def reset_backend() -> None:
    """Forget the adapter (tests switch between stand-ins)."""
    global _backend
    _backend = None
