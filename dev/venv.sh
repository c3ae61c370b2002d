# Sourced by dev/setup*.sh. ensure_venv DIR REQUIREMENTS MESSAGE: create the venv DIR (once) with
# the packages of REQUIREMENTS; a venv is complete only after its last step (the marker file).
ensure_venv() {
  local venv=$1 requirements=$2 message=$3
  if [ ! -f "$venv/.complete" ]; then
    echo "setting up $venv ($message)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -r "$requirements" >&2
    [ -z "${VENV_POST:-}" ] || eval "$VENV_POST"
    touch "$venv/.complete"
  fi
}
