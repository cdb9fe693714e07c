#!/usr/bin/env bash
# One-command set-up for rsbench: creates .venv, installs the pinned OpenMMLab stack
# (building mmcv 2.1.0 with its compiled ops once into a cache outside the repo),
# installs rsbench with its first-party plugins, then runs the demo.
#   ./setup.sh              set up and run the demo
#   ./setup.sh --no-demo    set up only (what CI uses before the tests)
#   ./setup.sh --cuda-ops   build mmcv's ops with CUDA kernels even where no GPU is seen (done by
#                           itself when torch sees a CUDA GPU); the compiler comes from NVIDIA's
#                           packages on the package index, matched to torch.version.cuda
#   ./setup.sh --wheel-only build (or find) the mmcv wheel in the cache, print its path and stop
# Idempotent: a second run reuses the venv and the cached mmcv wheel.
# TORCH_CUDA_ARCH_LIST picks the GPU architectures of a CUDA build (default: the GPUs present,
# else "8.0;9.0"). RSBENCH_VENV, PYTHON and RSBENCH_TORCH_VERSION / RSBENCH_TORCHVISION_VERSION build
# in another venv, with another interpreter or torch (bench/gpu_check.sh --prepare uses them).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
CACHE=$(realpath -m "${RSBENCH_CACHE:-$HOME/.cache/rsbench}")
WHEELS="$CACHE/wheels"
VENV=${RSBENCH_VENV:-.venv}
TORCH_VERSION=${RSBENCH_TORCH_VERSION:-2.14.1}
TORCH_PINS=(torch==$TORCH_VERSION torchvision==${RSBENCH_TORCHVISION_VERSION:-0.29.1})
MMCV_VERSION=2.1.0
RUN_DEMO=1
CUDA_OPS=auto
WHEEL_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --no-demo) RUN_DEMO=0 ;;
    --cuda-ops) CUDA_OPS=1 ;;
    --wheel-only) WHEEL_ONLY=1 ;;
    *) echo "setup.sh: unknown option '$arg' (expected --no-demo, --cuda-ops or --wheel-only)" >&2; exit 2 ;;
  esac
done

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

if python -c "import torch, torchvision; assert torch.__version__.startswith('$TORCH_VERSION')" 2>/dev/null; then
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

# CUDA ops are built when asked for, or when torch sees a CUDA GPU. The driver's traces are
# looked at first so that a machine without a GPU does not pay for importing torch.
if [[ $CUDA_OPS == auto ]]; then
  CUDA_OPS=0
  if [[ -e /dev/nvidiactl || -e /proc/driver/nvidia/version ]] || command -v nvidia-smi >/dev/null; then
    if python -c "import torch,sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
      CUDA_OPS=1
    fi
  fi
fi

if [[ $CUDA_OPS == 1 ]]; then
  # What the CUDA build is made for: torch's CUDA version, and the GPUs present unless
  # TORCH_CUDA_ARCH_LIST says otherwise. Both name the wheel's cache folder.
  read -r TORCH_CUDA TORCH_SITE < <(python - <<'PY'
import importlib.util, pathlib, runpy
root = pathlib.Path(importlib.util.find_spec("torch").origin).parent
print(runpy.run_path(str(root / "version.py")).get("cuda") or "none", root.parent)
PY
) || true
  if [[ ${TORCH_CUDA:-none} == none ]]; then
    echo "setup.sh: --cuda-ops needs a CUDA build of torch; the installed torch is CPU-only" \
         "(torch.version.cuda is None)." >&2
    exit 1
  fi
  if [[ -z "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
    TORCH_CUDA_ARCH_LIST=$(python - 2>/dev/null <<'PY' || true
import torch
if torch.cuda.is_available():
    caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    print(";".join(f"{a}.{b}" for a, b in caps))
PY
)
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0}
  fi
  export TORCH_CUDA_ARCH_LIST
  arch_key=$(tr -d '.' <<<"$TORCH_CUDA_ARCH_LIST" | tr ' ;' '--' | tr -cd '0-9a-zA-Z+-' | tr '+' 'p')
  WHEELS="$CACHE/wheels-cu${TORCH_CUDA//./}-sm$arch_key"
fi

cuda_toolkit() {
  # NVIDIA's compiler, runtime headers and CCCL from the package index, of the CUDA version
  # torch was built with, installed apart from the venv; prints a CUDA_HOME that merges them
  # with the CUDA headers torch's own nvidia-* packages bring (cuBLAS, cuSPARSE, ... which
  # ATen's CUDA headers include). No system toolkit is used, even where one is installed.
  local major=${TORCH_CUDA%%.*} specs
  local toolkit_version
  toolkit_version=$(python -c "from importlib.metadata import version; print(version('cuda-toolkit'))" \
                    2>/dev/null || true)
  if [[ -n $toolkit_version ]]; then
    specs=("cuda-toolkit[nvcc,cccl,cudart]==$toolkit_version")   # the toolkit torch itself pins
  elif (( major >= 13 )); then
    specs=("nvidia-cuda-nvcc==$TORCH_CUDA.*" "nvidia-cuda-crt==$TORCH_CUDA.*" "nvidia-nvvm==$TORCH_CUDA.*"
           "nvidia-cuda-runtime==$TORCH_CUDA.*" "nvidia-cuda-cccl==$TORCH_CUDA.*")
  else
    specs=("nvidia-cuda-nvcc-cu$major==$TORCH_CUDA.*" "nvidia-cuda-runtime-cu$major==$TORCH_CUDA.*"
           "nvidia-cuda-cccl-cu$major==$TORCH_CUDA.*")
  fi
  local dir="$CACHE/cuda-$TORCH_CUDA"
  if [[ ! -x "$dir/home/bin/nvcc" ]]; then
    step "installing CUDA $TORCH_CUDA's compiler from the package index into $dir (${specs[*]})" >&2
    rm -rf "$dir"; mkdir -p "$dir/home"
    pip install -q --no-cache-dir --no-warn-conflicts --target "$dir/site" "${specs[@]}" >&2
    local pkg sub
    for pkg in "$dir"/site/nvidia/*/; do cp -rs "$pkg". "$dir/home/"; done
    for pkg in "$TORCH_SITE"/nvidia/*/; do
      for sub in include lib; do
        [[ -d "$pkg$sub" ]] && cp -rsn "$pkg$sub" "$dir/home/"
      done
    done
    [[ -e "$dir/home/lib64" ]] || ln -s lib "$dir/home/lib64"
    if [[ ! -e "$dir/home/lib/libcudart.so" ]]; then  # the wheel ships only libcudart.so.<major>
      ln -s "$(basename "$(ls "$dir"/home/lib/libcudart.so.* | head -1)")" "$dir/home/lib/libcudart.so"
    fi
    if [[ ! -x "$dir/home/bin/nvcc" ]]; then
      echo "setup.sh: the CUDA $TORCH_CUDA packages (${specs[*]}) brought no bin/nvcc into $dir/site" >&2
      exit 1
    fi
  fi
  echo "$dir/home"
}

build_mmcv_wheel() {
  # mmcv 2.1.0 has no wheels for torch 2.14: build it with ops, patched for C++20.
  local src="$CACHE/src"
  [[ $CUDA_OPS == 1 ]] && src="$CACHE/src-cuda"
  rm -rf "$src"; mkdir -p "$src" "$WHEELS"
  # mmcv's setup.py imports pkg_resources (gone from setuptools >= 82): build with an old one.
  pip install -q "setuptools<70" wheel ninja
  step "downloading mmcv==$MMCV_VERSION sources"
  pip download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$src"
  tar -xzf "$src"/mmcv-"$MMCV_VERSION".tar.gz -C "$src"
  local dir="$src/mmcv-$MMCV_VERSION"
  sed -i -e 's/-std=c++17/-std=c++20/g' -e 's/-std=c++14/-std=c++20/g' "$dir/setup.py"
  if [[ $CUDA_OPS == 1 ]]; then
    local cuda_home
    cuda_home=$(cuda_toolkit)
    step "building mmcv wheel with CUDA ops for sm ${TORCH_CUDA_ARCH_LIST} with CUDA $TORCH_CUDA from $cuda_home" \
         "(every op compiled for each architecture: far longer than the CPU build; once, cached in $WHEELS)"
    CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home" PATH="$cuda_home/bin:$PATH" \
      MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      pip wheel -q --no-build-isolation --no-deps "$dir" -w "$WHEELS"
  else
    step "building mmcv wheel with ops (FORCE_CUDA=0; ~16 min on 2 cores, once)"
    MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-2} \
      pip wheel -q --no-build-isolation --no-deps "$dir" -w "$WHEELS"
  fi
  pip install -q "setuptools>=77"
  rm -rf "$src"
}

if [[ $WHEEL_ONLY == 1 ]]; then
  ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 || build_mmcv_wheel
  ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl
  exit 0
fi

# The CUDA wheel installed last is recorded in the venv: a CPU mmcv, or one built for other
# GPUs, is replaced.
MARKER="$VENV/.mmcv-wheels"
if [[ $CUDA_OPS == 1 ]] && [[ "$(cat "$MARKER" 2>/dev/null)" != "$WHEELS" ]]; then
  mmcv_ready=0
elif python -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  mmcv_ready=1
else
  mmcv_ready=0
fi
if [[ $mmcv_ready == 1 ]]; then
  step "mmcv $MMCV_VERSION with ops already installed"
else
  if ! ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
    build_mmcv_wheel
  else
    step "using cached mmcv wheel from $WHEELS"
  fi
  if [[ $CUDA_OPS == 1 ]]; then
    pip install -q --no-deps --force-reinstall "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl
    echo "$WHEELS" >"$MARKER"
  else
    pip install -q --no-deps "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl
    rm -f "$MARKER"
  fi
fi

step "installing rsbench, its pinned OpenMMLab stack and first-party plugins"
pip install -q "setuptools>=77"
pip install -q -e ".[dev]"

if [[ $RUN_DEMO == 1 ]]; then
  step "running the demo on embedded fixture data"
  rsbench demo
fi
step "done. Activate with: source $VENV/bin/activate"
