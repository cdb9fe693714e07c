#!/usr/bin/env bash
# The test command: installs the third-party test plugin (tests/plugin_fixture) into .venv,
# then runs pytest. Extra arguments go to pytest (e.g. ./test.sh -k aid -x).
set -euo pipefail
cd "$(dirname "$0")"
source .venv/bin/activate
# The report test opens the page in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "==> installing Debian's chromium for the report test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "   chromium could not be installed; the browser test will be skipped"
fi
pip install -q --no-deps --disable-pip-version-check -e tests/plugin_fixture
export CUDA_VISIBLE_DEVICES=''
exec python -m pytest "$@"
