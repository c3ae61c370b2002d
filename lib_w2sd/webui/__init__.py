"""W2SD inside a WebUI: the only package that imports the WebUI's `modules`.

detect_webui() tells which WebUI this process runs in from the folders and version files of its
root (never by importing them); detect_backend() returns its adapter (see base.Backend for the
questions an adapter answers; common.py for what is shared): adapters/a1111.py, forge.py, and
old_forge.py for reForge and Forge Classic; or, for a WebUI without one (Forge before 2.0, Forge
Neo, anything else), adapters/unsupported.UnsupportedBackend, which leaves every generation plain
with one sentence naming the WebUI.

What each WebUI really has at its root (read in their sources):
- AUTOMATIC1111 v1.10.1 (82a973c0): `modules/` with sd_samplers_kdiffusion.py and
  sd_samplers_cfg_denoiser.py; no `modules_forge/`.
- Forge (lllyasviel, dfdcbab6): `modules_forge/` and `backend/` (the backend rewritten in 2.0,
  Aug 2024); modules_forge/forge_version.py `version = '2.0.1v1.10.1'`.
- Forge Neo (Haoming02/sd-webui-forge-classic, branch neo, 991be0ed): `backend/` too, its own
  fork of it; forge_version.py `version = "neo"`, `release = "2.22"`.
- The old backend (`ldm_patched/`, Forge's first, ComfyUI-style): Forge before 2.0
  (forge_version.py `'0.0.17v1.8.0rc'` .. `'1.0.2v1.10.1'`), reForge (Panchovix, main 3b56b268:
  `'1.0.0v2-v1.10.1RC'`, README "Stable Diffusion WebUI Forge/reForge", extensions-builtin/
  reForge-* and mahiro_reforge) and Forge Classic (Haoming02, branch classic 1f95d717:
  `version = "classic"`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from typing import Optional

from .base import Backend

# Families: which sampling code a WebUI runs.
A1111, FORGE, OLD_FORGE, UNKNOWN = "a1111", "forge", "ldm_patched", "unknown"

# The old-backend forks with an adapter (adapters/old_forge.py); Forge before 2.0 is not one of them.
OLD_FORGE_ADAPTED = ("reForge", "Forge Classic")

_backend: Optional[Backend] = None


@dataclass(frozen=True)
class WebUI:
    """The WebUI this process runs in, as its files tell it."""

    name: str  # as its users know it: "AUTOMATIC1111", "Forge", "Forge Neo", "reForge", ...
    family: str  # A1111, FORGE, OLD_FORGE or UNKNOWN
    version: Optional[str] = None  # from modules_forge/forge_version.py, where there is one
    root: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


def webui_root() -> Optional[str]:
    """The folder holding the WebUI's `modules` package. In a WebUI process modules.shared is
    imported and its file says where (`modules` is a namespace package there, whose path can
    grow with other folders named `modules`); else find_spec locates the package, importing
    nothing."""
    shared = sys.modules.get("modules.shared")
    if getattr(shared, "__file__", None):
        return os.path.dirname(os.path.dirname(os.path.abspath(shared.__file__)))
    spec = importlib.util.find_spec("modules") if "modules" not in sys.modules else None
    paths = list(getattr(sys.modules.get("modules"), "__path__", None) or
                 (spec.submodule_search_locations if spec is not None else None) or [])
    return os.path.dirname(os.path.abspath(paths[0])) if paths else None


def detect_webui(root: Optional[str] = None) -> WebUI:
    """Which WebUI lives in `root` (default: webui_root()), by its folders and version file."""
    root = root if root is not None else webui_root()
    if root is None:
        return WebUI("an unknown WebUI (no `modules` package found)", UNKNOWN)

    def has(*parts: str) -> bool:
        return os.path.exists(os.path.join(root, *parts))

    if not has("modules_forge"):
        if has("modules", "sd_samplers_kdiffusion.py") and has("modules", "sd_samplers_cfg_denoiser.py"):
            return WebUI("AUTOMATIC1111", A1111, root=root)
        return WebUI(f"an unknown WebUI in {root}", UNKNOWN, root=root)
    version, release = _forge_version(root)
    if has("backend"):
        if version == "neo":
            return WebUI("Forge Neo", UNKNOWN, release, root)
        return WebUI("Forge", FORGE, version, root)
    if has("ldm_patched"):
        if version == "classic":
            return WebUI("Forge Classic", OLD_FORGE, None, root)
        if _is_reforge(root, version):
            return WebUI("reForge", OLD_FORGE, version, root)
        return WebUI("Forge (first backend)", OLD_FORGE, version, root)
    return WebUI("a Forge fork with neither `backend` nor `ldm_patched`", UNKNOWN, version, root)


def _forge_version(root: str):
    """`version` and `release` of modules_forge/forge_version.py, read as text (None when absent)."""
    try:
        with open(os.path.join(root, "modules_forge", "forge_version.py"), encoding="utf-8") as f:
            text = f.read(4096)
    except OSError:
        return None, None

    def value(name):
        match = re.search(rf"^{name}\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
        return match.group(1) if match else None

    return value("version"), value("release")


def _is_reforge(root: str, version: Optional[str]) -> bool:
    """reForge's marks: its version form ('1.0.0v2-v1.10.1RC'; old Forge wrote '1.0.2v1.10.1'), its
    built-in extensions (reForge-*, mahiro_reforge) or its README's title."""
    if version and re.search(r"-v\d", version):
        return True
    try:
        if any("reforge" in entry.lower() for entry in os.listdir(os.path.join(root, "extensions-builtin"))):
            return True
    except OSError:
        pass
    try:
        with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
            return "reforge" in f.readline().lower()
    except OSError:
        return False


def detect_backend() -> Backend:
    """The adapter of the WebUI this process runs in (made once, then reused). Never raises: a
    WebUI without an adapter gets UnsupportedBackend, which names it."""
    global _backend
    if _backend is None:
        from .adapters.unsupported import UnsupportedBackend

        webui = detect_webui()
        try:
            _backend = _adapter(webui) or UnsupportedBackend(webui)
        except Exception as error:  # noqa: BLE001 - a WebUI whose modules the adapter cannot use
            _backend = UnsupportedBackend(webui, error)
    return _backend


def _adapter(webui: WebUI) -> Optional[Backend]:
    """The adapter for `webui`'s family (imported only here: it imports that WebUI's modules)."""
    if webui.family == A1111:
        from .adapters.a1111 import A1111Backend

        return A1111Backend()
    if webui.family == FORGE:
        from .adapters.forge import ForgeBackend

        return ForgeBackend()
    if webui.family == OLD_FORGE and webui.name in OLD_FORGE_ADAPTED:
        from .adapters.old_forge import OldForgeBackend

        return OldForgeBackend(webui)
    return None


def reset_backend() -> None:
    """Forget the adapter (tests switch between stand-ins)."""
    global _backend
    _backend = None
