#!/usr/bin/env bash
# One-command set-up for rsbench: creates .venv, installs the pinned OpenMMLab stack
# (building mmcv 2.1.0 with its compiled ops once into a cache outside the repo),
# installs rsbench with its first-party plugins, then runs the demo.
#   ./setup.sh            set up and run the demo
#   ./setup.sh --no-demo  set up only (what CI uses before the tests)
# Idempotent: a second run reuses the venv and the cached mmcv wheel.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
CACHE=${RSBENCH_CACHE:-$HOME/.cache/rsbench}
WHEELS="$CACHE/wheels"
VENV=.venv
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)
MMCV_VERSION=2.1.0
RUN_DEMO=1
[[ "${1:-}" == "--no-demo" ]] && RUN_DEMO=0

step() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  step "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
else
  step "reusing $VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if python -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1')" 2>/dev/null; then
  step "torch/torchvision already installed"
else
  # The CUDA build of torch on PyPI takes ~7 GB in the venv; pip needs room to unpack it
  # too. Fail early with a clear message instead of "No space left on device" halfway.
  need_gb=${RSBENCH_MIN_FREE_GB:-9}
  free_gb=$(df -Pk "$VENV" | awk 'NR==2 {print int($4 / 1048576)}')
  tmp_gb=$(df -Pk "${TMPDIR:-/tmp}" | awk 'NR==2 {print int($4 / 1048576)}')
  if (( free_gb < need_gb || tmp_gb < need_gb )); then
    echo "setup.sh: torch needs about $need_gb GB free for $VENV and ${TMPDIR:-/tmp};" \
         "found $free_gb GB and $tmp_gb GB. Free some space (old clones, /tmp/pytest-of-*)," \
         "or set RSBENCH_MIN_FREE_GB to override." >&2
    exit 1
  fi
  step "installing ${TORCH_PINS[*]} (several GB on first run)"
  pip install -q --no-cache-dir "${TORCH_PINS[@]}"
fi

build_mmcv_wheel() {
  # mmcv 2.1.0 has no wheels for torch 2.14: build it with ops, patched for C++20.
  local src="$CACHE/src"
  rm -rf "$src"; mkdir -p "$src" "$WHEELS"
  # mmcv's setup.py imports pkg_resources (gone from setuptools >= 82): build with an old one.
  pip install -q "setuptools<70" wheel ninja
  step "downloading mmcv==$MMCV_VERSION sources"
  pip download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$src"
  tar -xzf "$src"/mmcv-"$MMCV_VERSION".tar.gz -C "$src"
  local dir="$src/mmcv-$MMCV_VERSION"
  sed -i -e 's/-std=c++17/-std=c++20/g' -e 's/-std=c++14/-std=c++20/g' "$dir/setup.py"
  local force_cuda=0
  if command -v nvcc >/dev/null && python -c "import torch,sys; sys.exit(not torch.cuda.is_available())"; then
    force_cuda=1
  fi
  step "building mmcv wheel with ops (FORCE_CUDA=$force_cuda; ~16 min on 2 cores, once)"
  MMCV_WITH_OPS=1 FORCE_CUDA=$force_cuda MAX_JOBS=${MAX_JOBS:-2} \
    pip wheel -q --no-build-isolation --no-deps "$dir" -w "$WHEELS"
  pip install -q "setuptools>=77"
  rm -rf "$src"
}

if python -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  step "mmcv $MMCV_VERSION with ops already installed"
else
  if ! ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    build_mmcv_wheel
  else
    step "using cached mmcv wheel from $WHEELS"
  fi
  pip install -q --no-deps "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl
fi

step "installing rsbench, its pinned OpenMMLab stack and first-party plugins"
pip install -q "setuptools>=77"
pip install -q -e ".[dev]"

if [[ $RUN_DEMO == 1 ]]; then
  step "running the demo on embedded fixture data"
  rsbench demo
fi
step "done. Activate with: source $VENV/bin/activate"
