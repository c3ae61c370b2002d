#!/usr/bin/env bash
# The embedded default: the paper's 1-D and 2-D mixture experiments, no downloads, no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash dev/setup.sh)
exec "$python" -m lib_w2sd.demo "$@"
