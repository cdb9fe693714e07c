#!/usr/bin/env bash
# The GPU check: rsbench on one CUDA machine in under 8 minutes (one H100), written to
# bench/RESULTS-gpu.md.
#
#   bench/gpu_check.sh --prepare [DIR]   where the package index is reachable: put in DIR (default
#                                        .whl) the wheels the GPU machine lacks, mmcv with CUDA ops
#                                        built for its Python and torch (slow: an hour or more on 2
#                                        cores, once; cached by ./setup.sh)
#   bench/gpu_check.sh [--wheels DIR]    on the GPU machine, whose python3 has its own CUDA torch and
#                                        which reaches no package index: install DIR's wheels apart
#                                        (--target, nothing of the system's is replaced), then
#       doctor  mmcv's CUDA kernels, and one rotated op run on the GPU;
#       (b)     figure 9: a paper-size fine-tuning step of skysense-hr, skysense, mars, swin-b, vit-b
#               (and SkySense's ViT-L) in fp32/bf16, with/without activation checkpointing, against
#               the library models; then the cost table (python -m bench.gpu_step / bench.gpu_cost);
#       (a)     the smoke suite on cuda with resnet50-tiny, fp32 and bf16 at once (bench.gpu_smoke);
#       (c)     one evaluation with --nproc 2 when there are two GPUs, else says so;
#       then    bench/RESULTS-gpu.md (bench.gpu_report), copied with the JSON files to $OUT if set.
# Target of --prepare: GPU_PYTHON (3.12), GPU_TORCH (2.11.0), GPU_TORCHVISION (0.26.0), and
# TORCH_CUDA_ARCH_LIST (9.0): what the lent H100/H200 machines hold.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WHEELS=.whl
MODE=check
while (( $# )); do
  case "$1" in
    --prepare) MODE=prepare; [[ ${2:-} && ${2:0:2} != -- ]] && { WHEELS=$2; shift; } ;;
    --wheels) WHEELS=${2:?--wheels needs a folder}; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (expected --prepare [DIR] or --wheels DIR)" >&2; exit 2 ;;
  esac
  shift
done
say() { printf '\033[1;34m[gpu-check]\033[0m %s\n' "$*" >&2; }

# Packages the GPU machine's python lacks (it has torch, numpy, timm, pandas, scipy, opencv,
# matplotlib, rich, click, pluggy, ...): the pinned OpenMMLab set and what it imports. rasterio
# 1.4.3 (22 MB) rather than 1.5 (39 MB): what travels to the GPU machine is 64 MiB at most.
WANTED=(mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0 mmrotate-dev==1.0.1
        addict yapf platformdirs termcolor terminaltables prettytable wcwidth ftfy model-index ordered-set
        mat4py importlib-metadata lazy-importer pycocotools shapely rasterio==1.4.3 affine cligj click-plugins
        scikit-image==0.26.0 lazy-loader imageio tifffile networkx zstandard)  # guso-trans SSIM; reBEN archives

if [[ $MODE == prepare ]]; then
  GPU_PYTHON=${GPU_PYTHON:-3.12}
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  mkdir -p "$WHEELS"
  if [[ $WHEELS != /* && -d .git ]]; then  # carried, never committed
    grep -qx "/${WHEELS%/}/" .git/info/exclude 2>/dev/null || echo "/${WHEELS%/}/" >>.git/info/exclude
  fi
  say "downloading ${#WANTED[@]} wheels for CPython $GPU_PYTHON on x86-64 Linux into $WHEELS"
  platforms=()
  for n in 28 27 24 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$GPU_PYTHON" --implementation cp \
    "${platforms[@]}" --platform manylinux2014_x86_64 -d "$WHEELS" "${WANTED[@]}" || exit 1
  say "building the rsbench wheel (used where the GPU machine's setuptools cannot build the tree)"
  python3 -m pip wheel -q --no-deps -w "$WHEELS" . || exit 1
  say "building mmcv with CUDA ops for Python $GPU_PYTHON, torch ${GPU_TORCH:-2.11.0}, sm $TORCH_CUDA_ARCH_LIST"
  wheel=$(RSBENCH_VENV=${GPU_PREP_VENV:-/tmp/rsbench-gpu-prep} PYTHON=python$GPU_PYTHON \
          RSBENCH_TORCH_VERSION=${GPU_TORCH:-2.11.0} RSBENCH_TORCHVISION_VERSION=${GPU_TORCHVISION:-0.26.0} \
          ./setup.sh --cuda-ops --wheel-only | tail -1) || exit 1
  cp "$wheel" "$WHEELS"/ || exit 1
  du -ch "$WHEELS"/*.whl | tail -1 | sed 's/^/[gpu-check] wheels: /' >&2
  echo "carry $WHEELS (64 MiB at most) and run: bash bench/gpu_check.sh --wheels $WHEELS"
  exit 0
fi

# -- on the GPU machine -------------------------------------------------------------------------
START=$SECONDS
D=${GPU_CHECK_DIR:-/tmp/rsbench-gpu-check}
SITE=${GPU_CHECK_SITE:-/tmp/rsbench-site}
rm -rf "$D"; mkdir -p "$D"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 NO_COLOR=1 COLUMNS=160

pyver=$($PY -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
if ! ls "$WHEELS"/mmcv-2.1.0-"$pyver"-*.whl >/dev/null 2>&1; then
  echo "gpu_check.sh: no mmcv 2.1.0 wheel for $pyver in $WHEELS: run 'bench/gpu_check.sh --prepare' where" \
       "the package index is reachable (GPU_PYTHON, GPU_TORCH matching this machine: $($PY -c \
       'import sys, torch; print(sys.version.split()[0], torch.__version__)' 2>&1))" >&2
  exit 2
fi
others="$(ls "$WHEELS"/*.whl | grep -v -e '/rsbench-' -e '/mmcv-') $(ls "$WHEELS"/mmcv-2.1.0-"$pyver"-*.whl)"
say "installing $(wc -w <<<"$others") wheels into $SITE"
# shellcheck disable=SC2086
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $others || exit 1
if ! $PY -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --ignore-requires-python \
       --upgrade --target "$SITE" "$REPO" 2>"$D/rsbench-build.log"; then
  say "this tree does not build here ($(tail -1 "$D/rsbench-build.log")); installing the carried rsbench wheel"
  $PY -m pip install -q --no-index --no-deps --no-compile --ignore-requires-python --upgrade --target "$SITE" \
    "$WHEELS"/rsbench-*.whl || exit 1
fi
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
RSB=("$PY" -c 'import sys; from rsbench.cli.main import main; sys.exit(main())')  # the rsbench command

$PY - >"$D/header.json" <<'PY'
import json, subprocess, sys, datetime, torch
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"gpu": f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                  else "no GPU", "torch": torch.__version__, "cuda": torch.version.cuda,
                  "python": sys.version.split()[0], "revision": rev or "unknown",
                  "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"}))
PY
say "$(cat "$D/header.json")"

say "doctor: mmcv's CUDA kernels and a rotated op on the GPU"
"${RSB[@]}" doctor --json >"$D/doctor.json" 2>"$D/doctor.err"
doctor_rc=$?
$PY - "$D" <<'PY' || tail -5 "$D/doctor.err" >"$D/doctor.txt"
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
r = json.loads((d / "doctor.json").read_text())
cuda, ops = r["mmcv_cuda"], r["mmcv_ops"]
(d / "doctor.txt").write_text("\n".join([
    f"mmcv CUDA kernels: {'ok' if cuda['ok'] else 'FAILED'}: {cuda['detail']}",
    f"mmcv ops on the CPU: {'ok' if ops['ok'] else 'FAILED'}: {ops['detail']}",
    f"GPUs: {', '.join(r['devices']['cuda_devices']) or 'none'}; torch CUDA {r['devices']['torch_cuda_build']}",
    f"doctor healthy: {r['healthy']}"]) + "\n")
PY
cat "$D/doctor.txt" >&2

# Budgets keep the whole check under 8 minutes: a budget stops new measurements, a timeout the process.
say "(b) figure 9: paper-size fine-tuning steps (budget 110 s), then the cost table (budget 60 s)"
timeout 170 $PY -m bench.gpu_step --out "$D/steps.json" --budget-s 110 || say "gpu_step exited $?"
timeout 110 $PY -m bench.gpu_cost --out "$D/cost.json" --budget-s 60 || say "gpu_cost exited $?"

say "(a) the smoke suite on cuda, fp32 and bf16 side by side"
jobs=$(( $(nproc) / 4 > 1 ? $(nproc) / 4 : 1 ))
# fixtures once, before two processes would write the same (unlocked) cache folders at once
$PY -c 'from bench.gpu_smoke import fixtures; print(len(fixtures("all")), "fixtures")' >&2 || say "fixtures failed"
for p in fp32 bf16; do
  timeout 200 $PY -m bench.gpu_smoke --precisions "$p" --jobs "$jobs" --out "$D/smoke-$p.json" \
    --scratch "$D/smoke" >"$D/smoke-$p.log" 2>&1 &
done
wait
$PY - "$D" <<'PY'
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
parts = [json.loads(p.read_text()) for p in sorted(d.glob("smoke-*.json"))]
if parts:
    merged = {**parts[0], "precisions": {k: v for p in parts for k, v in p["precisions"].items()}}
    (d / "smoke.json").write_text(json.dumps(merged, indent=1))
PY
for p in fp32 bf16; do tail -2 "$D/smoke-$p.log" >&2; done

gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if (( gpus >= 2 )); then
  say "(c) --nproc 2 on $gpus GPUs"
  aid=$($PY -c 'from rsbench.io.fixtures import ensure_fixture; print(ensure_fixture("aid"))')
  if timeout 90 "${RSB[@]}" run -b resnet50-tiny -t aid --data-root "$aid" --device cuda --nproc 2 --max-iters 20 \
       --results "$D/nproc-results" --work-dir "$D/nproc-work" --force >"$D/nproc.log" 2>&1; then
    echo "ok: resnet50-tiny on AID's fixture, 2 processes on 2 GPUs (NCCL): $(tail -1 "$D/nproc.log")" >"$D/nproc.txt"
  else
    echo "FAILED (exit $?): $(tail -3 "$D/nproc.log" | tr '\n' ' ')" >"$D/nproc.txt"
  fi
else
  echo "Not run: this machine has $gpus GPU(s); --nproc 2 needs two." >"$D/nproc.txt"
fi

REPORT=${GPU_CHECK_REPORT:-$REPO/bench/RESULTS-gpu.md}
$PY -m bench.gpu_report --dir "$D" --out "$REPORT"
if [[ -n "${OUT:-}" ]]; then
  cp "$REPORT" "$OUT/"
  tar -czf "$OUT/gpu-check.tgz" -C "$D" --exclude=smoke --exclude=nproc-work --exclude=nproc-results . 2>/dev/null
fi
say "done in $(( SECONDS - START )) s (doctor exit $doctor_rc)"
