#!/usr/bin/env bash
# Creates (once) the virtual environment the tests, demo and benchmarks run in, and prints its
# python. The WebUI does not use this: it brings its own torch and k-diffusion.
# The venv lives outside the checkout, keyed by the requirements, so clean clones reuse it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/venv.sh"
key=$( (cat "$here/requirements.txt"; python3 --version) | sha256sum | cut -c1-12)
venv=${W2SD_VENV:-$HOME/.cache/sd-webui-w2sd/venv-$key}
ensure_venv "$venv" "$here/requirements.txt" "torch from the local wheels; about 2 minutes"
echo "$venv/bin/python"
