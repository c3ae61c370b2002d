"""Run by the WebUI's launcher before it starts (launch_utils.run_extension_installer), with the
WebUI's own Python and its `launch` helpers on the path.

What W2SD imports at run time inside a WebUI: torch, k_diffusion, gradio, starlette (the WebUI's
own: never installed or changed here) and numpy, safetensors, tqdm, which AUTOMATIC1111 1.10 and
Forge both ship. So this normally installs nothing; it installs one of those three only if some
unusual setup lacks it. The benchmark and demo tools (lib_w2sd/bench, lib_w2sd/demo.py) are for
developers, with their own requirements in dev/requirements.txt, and are not installed here.
"""

import launch

# import name -> pip requirement
REQUIREMENTS = {
    "numpy": "numpy",
    "safetensors": "safetensors",
    "tqdm": "tqdm",
}

for module, requirement in REQUIREMENTS.items():
    if not launch.is_installed(module):
        launch.run_pip(f"install {requirement}", f"{requirement} for sd-webui-w2sd")
