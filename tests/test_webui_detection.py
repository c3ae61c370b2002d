"""Which WebUI W2SD runs in (lib_w2sd.webui.detect_webui), told by the folders and version file of
its root, on small stand-in trees of each WebUI's real layout, and the one sentence a WebUI
without an adapter gets (adapters/unsupported.py). tests/test_webui_forks.py loads the extension
on these layouts."""


import os
import sys

import pytest

from lib_w2sd.webui import A1111, FORGE, OLD_FORGE, UNKNOWN, WebUI, detect_webui

TESTS = os.path.dirname(os.path.abspath(__file__))
SAMPLER_FILES = {"modules/sd_samplers_kdiffusion.py": "", "modules/sd_samplers_cfg_denoiser.py": ""}

# Each layout: the files detection reads, as the real WebUI has them (root listing, version file).
LAYOUTS = {
    # AUTOMATIC1111 v1.10.1 (kklouzal/stable-diffusion-webui 82a973c0): no modules_forge, no backend.
    "a1111": {**SAMPLER_FILES, "extensions-builtin/Lora/networks.py": "", "README.md": "# Stable Diffusion web UI\n"},
    # Forge main (lllyasviel/stable-diffusion-webui-forge dfdcbab6): backend/ (no __init__.py),
    # modules_forge/forge_version.py.
    "forge": {**SAMPLER_FILES, "backend/loader.py": "", "modules_forge/forge_version.py": "version = '2.0.1v1.10.1'\n"},
    # Forge Neo (Haoming02/sd-webui-forge-classic, branch neo, modules_forge/forge_version.py 991be0ed).
    "forge_neo": {**SAMPLER_FILES, "backend/loader.py": "",
                  "modules_forge/forge_version.py": 'version = "neo"\nrelease = "2.22"\n'},
    # reForge main (Panchovix/stable-diffusion-webui-reForge 3b56b268): ldm_patched/, its README's
    # title, its built-in extensions, modules_forge/forge_version.py.
    "reforge": {**SAMPLER_FILES, "ldm_patched/modules/samplers.py": "",
                "modules_forge/forge_version.py": "version = '1.0.0v2-v1.10.1RC'",
                "README.md": "# Stable Diffusion WebUI Forge/reForge\n",
                "extensions-builtin/mahiro_reforge/scripts/mahiro.py": "",
                "extensions-builtin/reForge-RescaleCFG/scripts/rescale_cfg.py": ""},
    # Forge Classic (Haoming02/sd-webui-forge-classic, branch classic 1f95d717): README titled
    # "Stable Diffusion WebUI Forge", modules_forge/forge_version.py `version = "classic"`.
    "forge_classic": {**SAMPLER_FILES, "ldm_patched/modules/samplers.py": "",
                      "modules_forge/forge_version.py": 'version = "classic"\n',
                      "README.md": "# Stable Diffusion WebUI Forge\n",
                      "extensions-builtin/xyz/scripts/xyz_grid.py": ""},
    # Forge before 2.0 (lllyasviel, ef35383b, Feb 2024; 37386592 '1.0.2v1.10.1' has the same layout).
    "forge_first_backend": {**SAMPLER_FILES, "ldm_patched/modules/samplers.py": "",
                            "modules_forge/forge_version.py": "version = '0.0.17v1.8.0rc'\n",
                            "README.md": "# Stable Diffusion WebUI Forge\n"},
    # Something with a `modules` package but none of the above (e.g. an A1111 before 1.6).
    "unknown": {"modules/processing.py": ""},
}
EXPECTED = {
    "a1111": WebUI("AUTOMATIC1111", A1111),
    "forge": WebUI("Forge", FORGE, "2.0.1v1.10.1"),
    "forge_neo": WebUI("Forge Neo", UNKNOWN, "2.22"),
    "reforge": WebUI("reForge", OLD_FORGE, "1.0.0v2-v1.10.1RC"),
    "forge_classic": WebUI("Forge Classic", OLD_FORGE),
    "forge_first_backend": WebUI("Forge (first backend)", OLD_FORGE, "0.0.17v1.8.0rc"),
}


def make_tree(root, files: dict) -> str:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return str(root)


@pytest.mark.parametrize("layout", sorted(EXPECTED))
def test_each_layout_is_told_apart(tmp_path, layout):
    root = make_tree(tmp_path, LAYOUTS[layout])
    found = detect_webui(root)
    expected = EXPECTED[layout]
    assert (found.name, found.family, found.version, found.root) == (expected.name, expected.family,
                                                                     expected.version, root)


def test_an_unknown_layout_is_named_by_its_folder(tmp_path):
    root = make_tree(tmp_path, LAYOUTS["unknown"])
    assert detect_webui(root) == WebUI(f"an unknown WebUI in {root}", UNKNOWN, root=root)


@pytest.mark.parametrize("files, name", [
    # older reForge releases: the '-v1.10.1RC' version form alone (main-old: '1.3.5-v1.10.1RC')
    ({"modules_forge/forge_version.py": "version = '1.3.5-v1.10.1RC'\n"}, "reForge"),
    # its gradio 4 branch (gradio4_main: '1.0.0v2gradio4-v1.10.1RC')
    ({"modules_forge/forge_version.py": "version = '1.0.0v2gradio4-v1.10.1RC'\n"}, "reForge"),
    # a reForge whose version file is gone still has its built-in extensions
    ({"modules_forge/forge_loader.py": "", "extensions-builtin/reForge-APGIsYourCFG/scripts/apg.py": ""},
     "reForge"),
    # Forge 1.0.2 (37386592), still on ldm_patched: a version without reForge's form
    ({"modules_forge/forge_version.py": "version = '1.0.2v1.10.1'\n"}, "Forge (first backend)"),
])
def test_old_backend_forks_are_named_by_what_their_files_allow(tmp_path, files, name):
    root = make_tree(tmp_path, {**SAMPLER_FILES, "ldm_patched/modules/samplers.py": "", **files})
    found = detect_webui(root)
    assert (found.name, found.family) == (name, OLD_FORGE)


def test_a_fork_with_neither_backend_is_unknown(tmp_path):
    root = make_tree(tmp_path, {**SAMPLER_FILES, "modules_forge/forge_version.py": "version = 'x'\n"})
    assert detect_webui(root).family == UNKNOWN


@pytest.mark.parametrize("stand_in, expected", [("stubs", WebUI("AUTOMATIC1111", A1111)),
                                                ("stubs_forge", WebUI("Forge", FORGE, "2.0.1v1.10.1")),
                                                ("stubs_oldforge", WebUI("reForge", OLD_FORGE, "1.0.0v2-v1.10.1RC"))])
def test_the_webui_stand_ins_are_detected_as_the_webuis_they_mirror(stand_in, expected):
    found = detect_webui(os.path.join(TESTS, stand_in))
    assert (found.name, found.family, found.version) == (expected.name, expected.family, expected.version)


def test_the_root_is_where_the_modules_package_is(monkeypatch, tmp_path):
    from lib_w2sd import webui

    make_tree(tmp_path, LAYOUTS["reforge"])
    monkeypatch.syspath_prepend(str(tmp_path))
    assert webui.webui_root() == str(tmp_path)
    assert "modules" not in sys.modules  # located, not imported
    assert detect_webui().name == "reForge"


# -- the one sentence ------------------------------------------------------------------------------
@pytest.mark.parametrize("layout, sentence", [
    ("forge_first_backend", "Forge (first backend) 0.0.17v1.8.0rc is not supported: it samples with Forge's "
                            "first backend (ldm_patched), for which W2SD's adapter covers only reForge and Forge "
                            "Classic"),
    ("forge_neo", "Forge Neo 2.22 is not supported: its backend is its own fork of Forge 2's"),
    ("unknown", "is not supported: W2SD found neither AUTOMATIC1111's sampler modules nor Forge's backend"),
])
def test_a_webui_without_an_adapter_gets_one_sentence_naming_it(tmp_path, layout, sentence):
    from lib_w2sd.webui.adapters.unsupported import SUPPORTED, UnsupportedBackend

    message = UnsupportedBackend(detect_webui(make_tree(tmp_path, LAYOUTS[layout]))).unsupported
    assert message.startswith(sentence) if layout != "unknown" else sentence in message
    assert message.endswith(f"({SUPPORTED}); generated without W2SD")
    assert message.count(". ") == 0 and "\n" not in message  # one sentence


def test_an_adapter_that_cannot_load_leaves_the_webui_plain_with_the_error(tmp_path, monkeypatch):
    """An A1111 layout whose `modules` cannot be imported (here: none on sys.path) gets the sentence,
    never the ImportError."""
    from lib_w2sd import webui
    from lib_w2sd.webui.adapters.unsupported import UnsupportedBackend

    root = make_tree(tmp_path, LAYOUTS["a1111"])
    monkeypatch.setattr(webui, "webui_root", lambda: root)
    webui.reset_backend()
    try:
        backend = webui.detect_backend()
        assert isinstance(backend, UnsupportedBackend) and webui.detect_backend() is backend
        assert backend.unsupported == ("AUTOMATIC1111: W2SD's adapter for it could not load (ModuleNotFoundError: "
                                       "No module named 'modules'); generated without W2SD")
    finally:
        webui.reset_backend()
