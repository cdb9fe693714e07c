"""``rsbench doctor``: is this installation able to run evaluations, and on what?

It also says whether mmcv's compiled ops hold CUDA kernels, and for which GPU architectures. An
mmcv built without them imports and runs fine on the CPU, and only fails inside the first RoIAlign
or rotated NMS of a CUDA run; :func:`cuda_ops_status` lets a run refuse that before it starts.
The architectures are read from the ELF section in which nvcc stores the kernels (``.nv_fatbin``),
so no CUDA toolkit is needed to answer.
"""

from __future__ import annotations

import platform
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

FATBIN_MAGIC = 0xBA55ED50
FATBIN_SECTIONS = (".nv_fatbin", "__nv_relfatbin")
_KIND_PTX, _KIND_CUBIN = 1, 2


@dataclass(frozen=True)
class CudaKernels:
    """The GPU code in one binary: machine code (SASS) per ``sm_XY`` and PTX per ``compute_XY``."""

    sass: tuple[int, ...] = ()
    ptx: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sass or self.ptx)

    def runs_on(self, capability: tuple[int, int]) -> bool:
        """True when a GPU of this compute capability can run the code: machine code of the same
        major version and a minor version not above the GPU's, or PTX the driver compiles for it."""
        major, minor = capability
        cc = major * 10 + minor
        return any(a // 10 == major and a % 10 <= minor for a in self.sass) or any(p <= cc for p in self.ptx)

    def describe(self) -> str:
        parts = [", ".join(f"sm_{a}" for a in self.sass)] if self.sass else []
        if self.ptx:
            parts.append("PTX " + ", ".join(f"compute_{a}" for a in self.ptx))
        return "; ".join(parts) or "none"


def _elf_section(path: Path, names: tuple[str, ...]) -> bytes | None:
    """Bytes of the first of ``names`` present in a 64-bit little-endian ELF file, else None."""
    with open(path, "rb") as fh:
        ident = fh.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            raise ValueError(f"{path} is not a 64-bit little-endian ELF file")
        shoff, = struct.unpack_from("<Q", ident, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ident, 0x3A)
        fh.seek(shoff)
        table = fh.read(shentsize * shnum)
        headers = [struct.unpack_from("<IIQQQQ", table, i * shentsize) for i in range(shnum)]
        _, _, _, _, str_off, str_size = headers[shstrndx]
        fh.seek(str_off)
        strtab = fh.read(str_size)
        found = {}
        for name_off, sh_type, _, _, off, size in headers:
            name = strtab[name_off:strtab.index(b"\0", name_off)].decode(errors="replace")
            if name in names and sh_type != 8:  # SHT_NOBITS holds no bytes
                found[name] = (off, size)
        for name in names:
            if name in found:
                off, size = found[name]
                fh.seek(off)
                return fh.read(size)
    return None


def fatbin_kernels(path: str | Path) -> CudaKernels:
    """The architectures of the CUDA kernels nvcc embedded in a shared library or object file.

    A fatbin section holds one or more containers (magic ``0xBA55ED50``, 16-byte header, payload
    size); each container holds entries whose 64-byte-or-longer header gives the kind (1 PTX,
    2 ELF cubin) at offset 0, its own size at 4, the payload size at 8 and the ``sm`` number at
    28. Compressed payloads keep that header, so nothing needs decompressing.
    """
    path = Path(path)
    data = _elf_section(path, FATBIN_SECTIONS)
    sass: set[int] = set()
    ptx: set[int] = set()
    pos = 0
    while data is not None and pos + 16 <= len(data):
        magic, _, header_size, size = struct.unpack_from("<IHHQ", data, pos)
        if magic != FATBIN_MAGIC:
            if magic == 0:  # alignment padding between containers
                pos += 8
                continue
            raise ValueError(f"{path}: unexpected bytes {magic:#x} in its fatbin section at offset {pos}")
        entry, end = pos + header_size, pos + header_size + size
        while entry + 32 <= end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            arch, = struct.unpack_from("<I", data, entry + 28)
            if entry_header == 0:
                raise ValueError(f"{path}: fatbin entry at offset {entry} has a zero-length header")
            if kind == _KIND_PTX:
                ptx.add(arch)
            elif kind == _KIND_CUBIN:
                sass.add(arch)
            entry += entry_header + payload
        pos = end
    return CudaKernels(tuple(sorted(sass)), tuple(sorted(ptx)))


def mmcv_extension() -> tuple[str, Path | None]:
    """mmcv's version and its compiled extension (``mmcv/_ext*.so``), found from the installed
    distribution's file list without importing mmcv; ``("absent", None)`` when mmcv is missing."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("mmcv")
    except PackageNotFoundError:
        return "absent", None
    for f in dist.files or ():
        if f.parts[0] == "mmcv" and f.name.startswith("_ext") and f.suffix == ".so":
            return dist.version, Path(str(f.locate())).resolve()
    return dist.version, None


def _gpus() -> list[tuple[str, tuple[int, int]]]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [(torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
            for i in range(torch.cuda.device_count())]


def judge_cuda_ops(version: str, ext: Path | None, kernels: CudaKernels,
                   gpus: list[tuple[str, tuple[int, int]]]) -> tuple[bool, str]:
    """The verdict of :func:`cuda_ops_status` from what was found (kept apart to be testable)."""
    if ext is None:
        what = "is not installed" if version == "absent" else f"{version} is installed without its compiled ops"
        return False, f"mmcv {what}: run ./setup.sh (with --cuda-ops for CUDA kernels)"
    if not kernels:
        return False, (f"mmcv {version}'s compiled ops ({ext}) have no CUDA kernels: they were built for the "
                       "CPU only, so detection models (mmdet/mmrotate ops such as RoIAlign and rotated NMS) "
                       "cannot run with --device cuda. Build them with `./setup.sh --cuda-ops` "
                       "(./setup.sh does so by itself where torch sees a GPU)")
    have = f"mmcv {version}'s ops have CUDA kernels for {kernels.describe()}"
    if not gpus:
        return True, f"{have}; no GPU is visible to run them"
    unfit = [f"{name} (sm_{a}{b})" for name, (a, b) in gpus if not kernels.runs_on((a, b))]
    if unfit:
        arch = ";".join(sorted({f"{a}.{b}" for _, (a, b) in gpus}))
        return False, (f"{have}, none of which runs on {', '.join(unfit)}: rebuild them with "
                       f"TORCH_CUDA_ARCH_LIST='{arch}' ./setup.sh --cuda-ops")
    return True, f"{have}, which run on {', '.join(sorted({name for name, _ in gpus}))}"


def _rotated_op_on_gpu() -> str:
    """Run two rotated-box kernels on the GPU and check them against the CPU kernels."""
    import torch
    from mmcv.ops import box_iou_rotated, nms_rotated

    boxes = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.3], [10.5, 10.0, 8.0, 4.0, 0.3], [40.0, 40.0, 6.0, 6.0, 1.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    iou_cpu = box_iou_rotated(boxes, boxes)
    iou_gpu = box_iou_rotated(boxes.cuda(), boxes.cuda()).cpu()
    _, keep_gpu = nms_rotated(boxes.cuda(), scores.cuda(), 0.5)
    torch.cuda.synchronize()
    if not torch.allclose(iou_cpu, iou_gpu, atol=1e-4):
        raise RuntimeError(f"box_iou_rotated differs between CPU and GPU: {iou_cpu.tolist()} vs {iou_gpu.tolist()}")
    if sorted(keep_gpu.cpu().tolist()) != [0, 2]:
        raise RuntimeError(f"nms_rotated on the GPU kept {keep_gpu.tolist()}, expected [0, 2]")
    return f"box_iou_rotated and nms_rotated ran on {torch.cuda.get_device_name()} and match the CPU"


def cuda_ops_status(run_on_gpu: bool = False) -> tuple[bool, str]:
    """Whether mmcv's compiled ops can run on this machine's GPUs, with one sentence saying why.

    ``ok`` is False when the ops have no CUDA kernels, or none for a visible GPU's architecture;
    with no GPU visible, kernels being present is enough. ``run_on_gpu`` also runs a rotated op
    on the GPU. A runner calls this before a detection task runs with ``--device cuda``.
    """
    version, ext = mmcv_extension()
    try:
        kernels = fatbin_kernels(ext) if ext is not None else CudaKernels()
    except (OSError, ValueError) as exc:
        return False, f"could not read the CUDA kernels of mmcv's ops: {exc}"
    gpus = _gpus() if kernels else []
    ok, message = judge_cuda_ops(version, ext, kernels, gpus)
    if ok and gpus and run_on_gpu:
        try:
            message = f"{message}; {_rotated_op_on_gpu()}"
        except Exception as exc:  # a kernel launch failure names itself best
            return False, f"{message}, but a rotated op failed on the GPU: {type(exc).__name__}: {exc}"
    return ok, message


def _mmcv_ops() -> dict[str, Any]:
    """Import mmcv's compiled extension and run two CPU kernels the detectors need."""
    try:
        import torch
        from mmcv.ops import box_iou_rotated, nms_rotated

        boxes = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.3], [10.5, 10.0, 8.0, 4.0, 0.3]])
        iou = box_iou_rotated(boxes, boxes)
        _, keep = nms_rotated(boxes, torch.tensor([0.9, 0.8]), 0.5)
        ok = bool(iou[0, 0] > 0.99) and keep.numel() == 1
        return {"ok": ok, "detail": "mmcv._ext loaded; box_iou_rotated and nms_rotated ran on the CPU"}
    except Exception as exc:
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}


def _mmcv_cuda() -> dict[str, Any]:
    version, ext = mmcv_extension()
    try:
        kernels = fatbin_kernels(ext) if ext is not None else CudaKernels()
    except (OSError, ValueError):
        kernels = CudaKernels()
    ok, detail = cuda_ops_status(run_on_gpu=True)
    return {"ok": ok, "detail": detail, "extension": str(ext) if ext else None,
            "sass": [f"sm_{a}" for a in kernels.sass], "ptx": [f"compute_{a}" for a in kernels.ptx],
            "gpus": [name for name, _ in _gpus()]}


def _devices() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "cpu_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "torch_cuda_build": torch.version.cuda,
    }


def _datasets(data_dir: Path | None) -> list[dict[str, Any]]:
    from rsbench.plugin_api.plugin_host import get_host

    catalog = get_host().catalog
    found = []
    for ds in catalog.datasets:
        entry: dict[str, Any] = {"dataset": ds.name, "root": None, "status": "not looked for"}
        if data_dir is not None:
            root = data_dir / ds.name
            entry["root"] = str(root)
            if not root.exists():
                entry["status"] = "absent"
            else:
                try:
                    summary = ds.check(root)
                    entry["status"] = f"ok ({len(summary.get('samples', []))} samples)"
                except Exception as exc:
                    entry["status"] = f"invalid: {exc}"
        found.append(entry)
    return found


def diagnose(data_dir: Path | None) -> dict[str, Any]:
    """Everything ``rsbench doctor`` shows. Unhealthy when the ops fail on the CPU, a pinned
    package is missing, or a GPU is visible that mmcv's ops have no working kernels for."""
    from rsbench.plugin_api.plugin_host import get_host
    from rsbench.run.provenance import package_versions

    host = get_host()
    ops = _mmcv_ops()
    cuda_ops = _mmcv_cuda()
    devices = _devices()
    plugins = [r.as_dict() for r in host.records]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": package_versions(),
        "mmcv_ops": ops,
        "mmcv_cuda": cuda_ops,
        "devices": devices,
        "plugins": plugins,
        "datasets": _datasets(data_dir),
        "healthy": ops["ok"] and "absent" not in package_versions().values()
        and (cuda_ops["ok"] or not devices["cuda_available"]),
    }


def render(report: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    table = Table(title="rsbench doctor", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("python", f"{report['python']} on {report['platform']}")
    for name, ver in report["versions"].items():
        table.add_row(name, ver if ver != "absent" else "[red]absent[/]")
    ops = report["mmcv_ops"]
    table.add_row("mmcv compiled ops", ("[green]ok[/] " if ops["ok"] else "[red]FAILED[/] ") + ops["detail"])
    cuda_ops = report["mmcv_cuda"]
    gpu_seen = report["devices"]["cuda_available"]
    style = "[green]ok[/] " if cuda_ops["ok"] else ("[red]FAILED[/] " if gpu_seen else "[yellow]CPU only[/] ")
    table.add_row("mmcv CUDA kernels", style + cuda_ops["detail"])
    dev = report["devices"]
    table.add_row("devices", f"CPU ({dev['cpu_threads']} threads); CUDA: "
                  + (", ".join(dev["cuda_devices"]) if dev["cuda_available"] else "not available"))
    for p in report["plugins"]:
        status = f"[red]error: {p['error']}[/]" if p["error"] else "ok"
        table.add_row(f"plugin {p['name']}", f"{p['version'] or '-'} {status}")
    for d in report["datasets"]:
        table.add_row(f"data {d['dataset']}", f"{d['status']}" + (f" at {d['root']}" if d["root"] else ""))
    console.print(table)
