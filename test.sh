#!/usr/bin/env bash
# The test command: installs the third-party test plugin (tests/plugin_fixture) into .venv,
# then runs pytest. Extra arguments go to pytest (e.g. ./test.sh -k aid -x).
set -euo pipefail
cd "$(dirname "$0")"
source .venv/bin/activate
pip install -q --no-deps --disable-pip-version-check -e tests/plugin_fixture
export CUDA_VISIBLE_DEVICES=''
exec python -m pytest "$@"
