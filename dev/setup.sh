#!/usr/bin/env bash
# Creates (once) the virtual environment the tests, demo and benchmarks run in, and prints its
# python. The WebUI does not use this: it brings its own torch and k-diffusion.
# The venv lives outside the checkout, keyed by the requirements, so clean clones reuse it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key=$( (cat "$here/requirements.txt"; python3 --version) | sha256sum | cut -c1-12)
venv=${W2SD_VENV:-$HOME/.cache/sd-webui-w2sd/venv-$key}
if [ ! -f "$venv/.complete" ]; then
  echo "setting up $venv (torch from the local wheels; about 2 minutes)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
