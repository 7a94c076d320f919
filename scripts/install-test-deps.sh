#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine with Python 3.11:
# - Debian's chromium for the browser tests (Playwright drives it; it never downloads
#   a browser of its own),
# - the project and its test extra in .venv.
# Idempotent: what is already there is not installed again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "installing Debian's chromium for the browser tests" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# Playwright must use /usr/bin/chromium, never fetch its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
