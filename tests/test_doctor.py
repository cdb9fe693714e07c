"""mmcv's CUDA kernels as ``rsbench doctor`` reads them: the fatbin reader, the verdict a CUDA run
of a detection task gets, and this machine's own (CPU-only) ops."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from rsbench.cli.doctor import CudaKernels, cuda_ops_status, fatbin_kernels, judge_cuda_ops, mmcv_extension

H100 = [("NVIDIA H100 80GB HBM3", (9, 0))]


def _fatbin(entries: list[tuple[int, int]]) -> bytes:
    """One fatbin container with (kind, sm) entries laid out as nvcc writes them."""
    body = b""
    for kind, arch in entries:
        payload = b"\xab" * 40
        header = bytearray(64)
        struct.pack_into("<HHIQ", header, 0, kind, 0x101, 64, len(payload))
        struct.pack_into("<I", header, 28, arch)
        body += bytes(header) + payload
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def _elf(sections: dict[str, bytes]) -> bytes:
    """A 64-bit little-endian ELF file holding only ``sections`` (plus its name table)."""
    names = b"\0" + b"".join(n.encode() + b"\0" for n in [*sections, ".shstrtab"])
    data, offsets, pos = b"", [], 64
    for blob in [*sections.values(), names]:
        offsets.append(pos + len(data))
        data += blob
    shoff = 64 + len(data)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(sections) + 2,
                                 len(sections) + 1)
    table = bytes(64)  # the null section
    name_pos = 1
    for i, (name, blob) in enumerate([*sections.items(), (".shstrtab", names)]):
        table += struct.pack("<IIQQQQIIQQ", name_pos, 1 if name != ".shstrtab" else 3, 0, 0, offsets[i], len(blob),
                             0, 0, 8, 0)
        name_pos += len(name) + 1
    return header + data + table


def test_fatbin_reader_lists_machine_code_and_ptx(tmp_path: Path):
    so = tmp_path / "_ext.so"
    so.write_bytes(_elf({".text": b"\x90" * 24,
                         ".nv_fatbin": _fatbin([(2, 80), (2, 90)]) + _fatbin([(2, 90), (1, 90)])}))
    kernels = fatbin_kernels(so)
    assert kernels == CudaKernels(sass=(80, 90), ptx=(90,))
    assert kernels.describe() == "sm_80, sm_90; PTX compute_90"


def test_a_cpu_only_extension_has_no_kernels(tmp_path: Path):
    so = tmp_path / "_ext.so"
    so.write_bytes(_elf({".text": b"\x90" * 24}))
    assert not fatbin_kernels(so)
    (tmp_path / "bad.so").write_bytes(b"MZ not an elf file at all, padded to sixty-four bytes..........")
    with pytest.raises(ValueError, match="bad.so is not a 64-bit little-endian ELF"):
        fatbin_kernels(tmp_path / "bad.so")


@pytest.mark.skipif(not Path("/usr/local/cuda/bin/nvcc").exists() and not shutil.which("nvcc"),
                    reason="needs nvcc to compile a real kernel")
def test_fatbin_reader_agrees_with_nvcc_output(tmp_path: Path):
    """A real library from nvcc: machine code for sm_80 and sm_90 plus compute_90 PTX."""
    nvcc = "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else shutil.which("nvcc")
    src = tmp_path / "k.cu"
    src.write_text("__global__ void add(float *x) { x[threadIdx.x] += 1.f; }\n")
    out = tmp_path / "k.so"
    subprocess.run([nvcc, "-shared", "-Xcompiler", "-fPIC", "-gencode", "arch=compute_80,code=sm_80",
                    "-gencode", "arch=compute_90,code=[sm_90,compute_90]", str(src), "-o", str(out)],
                   check=True, capture_output=True, timeout=120)
    assert fatbin_kernels(out) == CudaKernels(sass=(80, 90), ptx=(90,))


def test_which_gpus_the_kernels_run_on():
    k = CudaKernels(sass=(80, 90))
    assert k.runs_on((8, 0)) and k.runs_on((8, 6)) and k.runs_on((9, 0))  # same major, minor not above
    assert not k.runs_on((7, 5)) and not k.runs_on((10, 0)) and not k.runs_on((12, 0))
    assert CudaKernels(ptx=(90,)).runs_on((12, 0))  # PTX is compiled by the driver for newer GPUs
    assert not CudaKernels(ptx=(90,)).runs_on((8, 6))


def test_verdicts_for_a_cuda_run(tmp_path: Path):
    ext = tmp_path / "_ext.so"
    ok, why = judge_cuda_ops("2.1.0", ext, CudaKernels(), H100)
    assert not ok and "no CUDA kernels" in why and "./setup.sh --cuda-ops" in why
    ok, why = judge_cuda_ops("2.1.0", ext, CudaKernels(sass=(80,)), H100)
    assert not ok and "NVIDIA H100 80GB HBM3 (sm_90)" in why and "TORCH_CUDA_ARCH_LIST='9.0'" in why
    ok, why = judge_cuda_ops("2.1.0", ext, CudaKernels(sass=(80, 90)), H100)
    assert ok and why.endswith("which run on NVIDIA H100 80GB HBM3")
    ok, why = judge_cuda_ops("2.1.0", ext, CudaKernels(sass=(90,)), [])
    assert ok and "no GPU is visible" in why
    ok, why = judge_cuda_ops("absent", None, CudaKernels(), [])
    assert not ok and why.startswith("mmcv is not installed")


def test_this_installation_answers_in_one_sentence():
    """CI's set-up builds mmcv for the CPU: the status must say so (or, on a CUDA build, name archs)."""
    version, ext = mmcv_extension()
    assert version == "2.1.0" and ext is not None and ext.name.startswith("_ext")
    ok, why = cuda_ops_status()
    kernels = fatbin_kernels(ext)
    if kernels:
        assert ok and kernels.describe() in why
    else:
        assert not ok and "no CUDA kernels" in why and "--device cuda" in why


# -- the set-up's flags and the prepared GPU check (bench/gpu_*.py), as far as a CPU allows ----------
REPO = Path(__file__).resolve().parent.parent


def test_setup_and_gpu_check_scripts_parse_and_refuse_unknown_options():
    for script in ("setup.sh", "bench/gpu_check.sh"):
        subprocess.run(["bash", "-n", str(REPO / script)], check=True)
    bad = subprocess.run(["bash", str(REPO / "setup.sh"), "--cuda-op"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown option '--cuda-op'" in bad.stderr and "--cuda-ops" in bad.stderr


@pytest.fixture(scope="module")
def tiny_step_rows():
    """bench.gpu_step's code path on the tiny ViT (ours and mmpretrain's), one timed fp32 step."""
    from bench.gpu_step import run_case

    return run_case("vit-b", "cpu", ["fp32"], steps=1, tiny=True, deadline=float("inf"))


def test_fine_tuning_step_measures_both_sides(tiny_step_rows):
    by = {(r.side, r.checkpointing): r for r in tiny_step_rows}
    assert set(by) == {("ours", False), ("ours", True), ("library", False), ("library", True)}
    for key in (("ours", False), ("ours", True), ("library", False)):
        assert by[key].status == "ok" and by[key].ms > 0 and by[key].images_per_s > 0, by[key]
        assert by[key].input == "2x3x64x64" and by[key].peak_gib is None  # no CUDA: no peak
    # mmpretrain's ViT has no checkpointing switch of its own: said, not faked
    assert by[("library", True)].status == "n/a"


def test_report_states_goals_from_rows_and_never_fills_gaps(tiny_step_rows, tmp_path: Path):
    import dataclasses
    import json

    from bench.gpu_report import render

    rows = [dataclasses.asdict(r) for r in tiny_step_rows]
    (tmp_path / "steps.json").write_text(json.dumps({"steps": 1, "sizes": {"vit-b": [64, 2, "tiny"]}, "rows": rows}))
    (tmp_path / "smoke.json").write_text(json.dumps({"backbone": "resnet50-tiny", "device": "cuda", "precisions": {
        "bf16": {"evaluations": 2, "rows": 2, "ok": 1, "devices": ["cuda: NVIDIA H100"], "minutes": 1.0,
                 "not_ok": [{"task": "dior", "status": "failed", "error": "RuntimeError: boom"}]}}}))
    text = render(tmp_path, "1 x NVIDIA H100 80GB HBM3", {"torch": "2.11.0"})
    assert text.startswith("# rsbench on a GPU: 1 x NVIDIA H100 80GB HBM3")
    ratio = next(r for r in rows if r["side"] == "ours" and not r["checkpointing"])["ms"] / next(
        r for r in rows if r["side"] == "library" and not r["checkpointing"])["ms"]
    assert f"{ratio:.3f}" in text
    assert "| bf16 >= 1.5x fp32 step throughput, ViT-L | **not measured** |" in text  # no bf16 row
    assert "fits one 80 GB GPU at the official per-GPU batch | **not measured** |" in text  # no skysense row
    assert "dior: failed RuntimeError: boom" in text
    assert "Not measured: no cost file." in text and "## (c) Two processes\n\nnot run" in text


def test_cost_plan_and_smoke_specs_come_from_the_catalog():
    from bench.gpu_cost import plan
    from bench.gpu_smoke import specs_for

    isaid = plan("isaid")
    assert isaid["size"] and isaid["batch"] and (isaid["iters"] or isaid["epochs"])
    specs = specs_for("all", "resnet50-tiny", "bf16", "cuda", Path("/tmp/w"), roots={})
    assert len(specs) >= 25 and {s.precision for s in specs} == {"bf16"} and {s.device for s in specs} == {"cuda"}
    assert all(s.max_iters for s in specs)  # the smoke schedule
