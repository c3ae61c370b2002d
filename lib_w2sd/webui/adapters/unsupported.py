"""The adapter for a WebUI W2SD has no adapter for (lib_w2sd.webui.detect_webui): it imports
none of that WebUI's modules, and its `unsupported` sentence names the WebUI, so that
common.start leaves every generation plain with that one sentence under the image, in the
infotext ("W2SD warning") and on the console. Nothing else of it is ever called; should it be,
it raises that sentence as a W2SDError.
"""

from __future__ import annotations

import sys
from typing import Optional

from ...errors import W2SDError
from ..base import Backend

SUPPORTED = "W2SD runs in AUTOMATIC1111 1.10, lllyasviel's Forge 2, reForge and Forge Classic"


def reason(webui, error: Optional[Exception] = None) -> str:
    """One sentence: which WebUI this is, why W2SD does not run in it, and what happens instead."""
    from .. import OLD_FORGE

    if error is not None:
        return (f"{webui}: W2SD's adapter for it could not load ({type(error).__name__}: {error}); "
                "generated without W2SD")
    if webui.family == OLD_FORGE:
        why = ("it samples with Forge's first backend (ldm_patched), for which W2SD's adapter covers only reForge "
               "and Forge Classic")
    elif webui.name == "Forge Neo":
        why = "its backend is its own fork of Forge 2's, which W2SD has not been adapted to yet"
    else:
        why = "W2SD found neither AUTOMATIC1111's sampler modules nor Forge's backend in it"
    return f"{webui} is not supported: {why} ({SUPPORTED}); generated without W2SD"


def _refusing_the_rest(cls):
    """Every question of base.Backend that `cls` does not answer raises the one sentence: W2SD
    never gets past start() there, and a new question of the interface needs no edit here."""
    for name in Backend.__abstractmethods__:
        if name not in vars(cls):
            setattr(cls, name, cls._refuse)
    cls.__abstractmethods__ = frozenset()
    return cls


@_refusing_the_rest
class UnsupportedBackend(Backend):
    name = "unsupported"

    def __init__(self, webui, error: Optional[Exception] = None):
        self.webui = webui
        self.unsupported = reason(webui, error)

    def warn(self, p, message: str) -> None:
        comment = getattr(p, "comment", None)
        if callable(comment):
            comment(message)
        print(message, file=sys.stderr)

    def _refuse(self, *args, **kwargs):
        raise W2SDError(self.unsupported)


    def uninstall(self, p) -> None:
        """Nothing was installed."""

    def release_unets(self, generation_ended: bool) -> None:
        """Nothing was loaded."""
