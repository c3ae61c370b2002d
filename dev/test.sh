#!/usr/bin/env bash
# Lint and the whole test suite (CPU, a few minutes): everything on A1111's gradio 3.41, then the
# UI, API, X/Y/Z and browser tests again on Forge's gradio 4.40. Arguments go to the first pytest
# run only (and skip the second).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash dev/setup.sh)
bash dev/setup_browser.sh
"$python" -m ruff check .
W2SD_EXPECT_GRADIO=3 "$python" -m pytest -q -p no:cacheprovider "$@"
if [ "$#" -eq 0 ]; then
  python4=$(bash dev/setup_gradio4.sh)
  W2SD_EXPECT_GRADIO=4 "$python4" -m pytest -q -p no:cacheprovider tests/test_ui.py tests/test_api.py tests/test_xyz.py \
    tests/test_browser.py
fi
