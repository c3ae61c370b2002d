#!/usr/bin/env bash
# Creates (once) a venv with Forge's gradio 4 layered over the main venv (dev/setup.sh): gradio
# and its dependencies are installed in it, everything else (torch, k-diffusion, pytest) is read
# from the main venv through a .pth file placed after the venv's own packages. Prints its python.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/venv.sh"
main_python=$(bash "$here/setup.sh")
main_site=$("$main_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
key=$( (cat "$here/requirements-gradio4.txt"; echo "$main_site") | sha256sum | cut -c1-12)
venv=${W2SD_VENV_GRADIO4:-$HOME/.cache/sd-webui-w2sd/venv-gradio4-$key}
# the main venv's packages go on the path only after gradio 4's are installed
VENV_POST='echo "$main_site" > "$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()[\"purelib\"])")/zz-w2sd-main-venv.pth"' \
  ensure_venv "$venv" "$here/requirements-gradio4.txt" "gradio 4 over the main venv; about a minute"
echo "$venv/bin/python"
