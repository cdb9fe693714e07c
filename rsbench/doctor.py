"""``rsbench doctor``: is this installation able to run evaluations, and on what?"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rsbench.plugins import get_host
from rsbench.provenance import package_versions


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
    host = get_host()
    ops = _mmcv_ops()
    plugins = [r.as_dict() for r in host.records]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": package_versions(),
        "mmcv_ops": ops,
        "devices": _devices(),
        "plugins": plugins,
        "datasets": _datasets(data_dir),
        "healthy": ops["ok"] and "absent" not in package_versions().values(),
    }


def render(report: dict[str, Any], console: Console) -> None:
    table = Table(title="rsbench doctor", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value")
    table.add_row("python", f"{report['python']} on {report['platform']}")
    for name, ver in report["versions"].items():
        table.add_row(name, ver if ver != "absent" else "[red]absent[/]")
    ops = report["mmcv_ops"]
    table.add_row("mmcv compiled ops", ("[green]ok[/] " if ops["ok"] else "[red]FAILED[/] ") + ops["detail"])
    dev = report["devices"]
    table.add_row("devices", f"CPU ({dev['cpu_threads']} threads); CUDA: "
                  + (", ".join(dev["cuda_devices"]) if dev["cuda_available"] else "not available"))
    for p in report["plugins"]:
        status = f"[red]error: {p['error']}[/]" if p["error"] else "ok"
        table.add_row(f"plugin {p['name']}", f"{p['version'] or '-'} {status}")
    for d in report["datasets"]:
        table.add_row(f"data {d['dataset']}", f"{d['status']}" + (f" at {d['root']}" if d["root"] else ""))
    console.print(table)
