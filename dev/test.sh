#!/usr/bin/env bash
# Lint and the whole test suite (CPU, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash dev/setup.sh)
"$python" -m ruff check .
exec "$python" -m pytest -q -p no:cacheprovider "$@"
