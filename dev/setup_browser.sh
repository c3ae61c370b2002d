#!/usr/bin/env bash
# Debian's chromium for the browser test (tests/test_browser.py): Playwright drives it, and no
# browser is ever downloaded. Installed with apt-get when /usr/bin/chromium is missing and this
# runs as root; otherwise the test skips (and fails under CI=true).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser test (a minute or two, once)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq chromium >&2
else
  echo "no /usr/bin/chromium and no root to install it: tests/test_browser.py will skip" >&2
fi
