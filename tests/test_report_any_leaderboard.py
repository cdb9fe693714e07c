"""``rsbench report`` renders every leaderboard rsbench can write: empty, failed and skipped only,
missing values, one seed, tiny presets on fixtures (the smoke suite's leaderboard), val next to
test, mixed precisions, an older file without newer columns. Leaderboards are written in-process
with ``leaderboard.append_row``, as the runner writes them; nothing trains."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rsbench.results import leaderboard
from rsbench.results.aggregate import NO_PAPER
from rsbench.results.report import write_report
from test_report import as_frame, parse_page

REPO_PAPER = Path(__file__).resolve().parents[1] / "results" / "paper_results.csv"
DEFINITION = {"aid": "OA (%)", "isaid": "mIoU (%)", "fair1m": "mAP@0.5 (%)", "whu-cd": "IoU (%) of change"}
METRIC = {"aid": "OA", "isaid": "mIoU", "fair1m": "mAP50", "whu-cd": "IoU (change)"}


def row(n: int, backbone: str, task: str, value: Any, **extra: Any) -> dict[str, Any]:
    """A row with every field the runner fills, as ``_Run`` builds it."""
    base = dict(run_id=f"run{n:03d}", timestamp="2026-01-01T00:00:00+00:00", backbone=backbone, checkpoint="",
                checkpoint_sha256="", task=task, dataset=task, split="test", protocol="finetune", metric=METRIC[task],
                metric_definition=DEFINITION[task], value=value, seed=0, config_hash=f"cfg{n}", git_sha="abc",
                versions=json.dumps({"torch": "2.3.0"}), wall_time_s=1.5, peak_mem_mb=100.0, gpu_hours="",
                device="cpu", nproc=1, status="ok", error="", data_root="/data", fixture=False,
                options=json.dumps({"split_seed": 0}), adapter="", normalization="", work_dir="/w",
                feature_cache="", precision="fp32", backbone_params_loaded=0, backbone_params_random=1000)
    return {**base, **extra}


def smoke(results: Path) -> None:
    """What ``rsbench suite --suite all --backbones skysense-tiny,mars-tiny --smoke`` writes: tiny
    presets, fixture data, one seed, tasks with paper numbers, skipped pairs, an unscored split."""
    csv_path = results / leaderboard.LEADERBOARD_NAME
    runs = {"skysense-tiny": ("aid", "isaid", "fair1m", "whu-cd"), "mars-tiny": ("aid", "whu-cd")}
    splits = {"isaid": "val", "fair1m": "validation"}
    n = 0
    for backbone, tasks in runs.items():
        for task in tasks:
            n += 1
            leaderboard.append_row(csv_path, row(n, backbone, task, 10.0 + n, split=splits.get(task, "test"), fixture=True,
                                                 options=json.dumps({"train_ratio": 0.2} if task == "aid" else {})))
    for task in ("isaid", "fair1m"):
        n += 1
        leaderboard.append_row(csv_path, row(n, "mars-tiny", task, "", status="skipped", fixture=True,
                                             error="skipped: modality — backbone takes hr and sar, task provides hr"))
    leaderboard.append_row(csv_path, row(99, "skysense-tiny", "fair1m", "", split="submission", fixture=True))
    shutil.copy(REPO_PAPER, results / "paper_results.csv")


def failed_only(results: Path) -> None:
    path = results / leaderboard.LEADERBOARD_NAME
    leaderboard.append_row(path, row(1, "mars", "aid", "", status="failed", error="CheckpointError: no such file"))
    leaderboard.append_row(path, row(2, "mars", "isaid", "", status="skipped", error="skipped: modality"))


def missing_values(results: Path) -> None:
    """Cells left empty by a crash, an old runner or a hand edit; one status nobody writes."""
    path = results / leaderboard.LEADERBOARD_NAME
    leaderboard.append_row(path, dict(run_id="bare", backbone="resnet50", task="aid", status="ok", value=88.0))
    leaderboard.append_row(path, row(2, "resnet50", "aid", 87.0, split="", seed="", options="", precision="",
                                     metric_definition="", versions="", wall_time_s=""))
    leaderboard.append_row(path, row(3, "resnet50", "aid", "nan", options="not json"))
    leaderboard.append_row(path, row(4, "vit-b", "aid", 90.0, options="[1, 2]", fixture=""))
    leaderboard.append_row(path, row(5, "vit-b", "aid", "", status=""))
    leaderboard.append_row(path, row(6, "vit-b", "isaid", "inf"))


def splits_and_precisions(results: Path) -> None:
    """The same evaluation on val and test, in fp32 and bf16, and official weights on real data:
    one exact paper match, several near misses."""
    path = results / leaderboard.LEADERBOARD_NAME
    weights = dict(checkpoint="skysense_model_backbone_hr.pth", checkpoint_sha256="f00d", backbone_params_loaded=650,
                   backbone_params_random=0)
    ratio = json.dumps({"train_ratio": 0.2})
    n = 0
    for split, precision, seeds in (("test", "fp32", (97.0, 97.5, 98.0)), ("val", "fp32", (99.0,)),
                                    ("test", "bf16", (96.0, 96.5))):
        for seed, value in enumerate(seeds):
            n += 1
            leaderboard.append_row(path, row(n, "skysense", "aid", value, split=split, precision=precision, seed=seed,
                                             options=ratio, **weights))
    leaderboard.append_row(path, row(20, "skysense", "aid", 80.0, options=ratio))  # random init: no comparison
    leaderboard.append_row(path, row(21, "skysense", "isaid", 70.0, split="val", **weights,
                                     options=json.dumps({"patch_size": 896, "overlap": 384})))
    shutil.copy(REPO_PAPER, results / "paper_results.csv")


def old_file(results: Path) -> None:
    """A leaderboard an older rsbench wrote: no precision, fixture or weights columns."""
    columns = ["run_id", "backbone", "task", "split", "protocol", "metric", "value", "seed", "status", "options"]
    with open(results / leaderboard.LEADERBOARD_NAME, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerow(["a", "resnet50", "aid", "test", "finetune", "OA", "90", "0", "ok", "{}"])
        writer.writerow(["b", "resnet50", "aid", "test", "finetune", "OA", "92", "1", "ok", "{}"])


def header_only(results: Path) -> None:
    (results / leaderboard.LEADERBOARD_NAME).write_text(",".join(leaderboard.COLUMNS) + "\n")


CASES = {"empty": lambda results: None, "header-only": header_only, "failed-only": failed_only, "smoke": smoke,
         "missing-values": missing_values, "splits-and-precisions": splits_and_precisions, "old-file": old_file}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Path]]]:
    out = {}
    for name, write in CASES.items():
        results = tmp_path_factory.mktemp(name)
        write(results)
        out[name] = results, write_report(results, results / "report")
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_every_leaderboard_renders_and_accounts_for_every_row(rendered, name):
    results, written = rendered[name]
    page = parse_page(written["html"])
    markdown = written["markdown"].read_text()
    assert markdown.startswith("# rsbench leaderboard report") and "</html>" in written["html"].read_text()
    rows = leaderboard.read_rows(results / leaderboard.LEADERBOARD_NAME)

    def scored(r: dict[str, str]) -> bool:
        try:
            return r.get("status") == "ok" and abs(float(r.get("value") or "nan")) < float("inf")
        except ValueError:
            return False

    runs = as_frame(page.tables["runs"]) if "runs" in page.tables else None
    assert (0 if runs is None else len(runs)) == sum(r.get("status") == "ok" for r in rows)
    problems = as_frame(page.tables["problems"]) if "problems" in page.tables else None
    assert (0 if problems is None else len(problems)) == sum(not scored(r) for r in rows)
    if not any(scored(r) for r in rows):
        assert "No successful run yet" in written["html"].read_text()
        return
    overall = page.tables["overall"]
    pooled = sum(int(c[0].split("n=")[1]) for r in overall[1:] for c in r[1:-1] if "n=" in c[0])
    assert pooled == sum(scored(r) for r in rows)  # every scored row counted exactly once
    for head in (c[0] for c in overall[0][1:-1]):
        assert len(head.split(" · ")) >= 3  # task · split · protocol: a column never mixes splits


def test_smoke_leaderboard_of_tiny_presets_has_no_paper_number(rendered):
    results, written = rendered["smoke"]
    compare = as_frame(parse_page(written["html"]).tables["paper-compare"])
    assert set(compare["backbone"]) == {"skysense-tiny", "mars-tiny"}
    assert set(compare["paper"]) == {NO_PAPER} and set(compare["Δ"]) == {"—"}
    isaid = compare[(compare["task"] == "isaid") & (compare["backbone"] == "skysense-tiny")].iloc[0]
    assert "preset skysense-tiny (paper: skysense)" in isaid["match"] and "generated fixture data" in isaid["match"]
    fair1m = compare[compare["task"] == "fair1m"].iloc[0]
    assert "split validation (paper: submission)" in fair1m["match"]
    assert "paper_scatter" not in written and 'id="fixture-banner"' in written["html"].read_text()
    problems = as_frame(parse_page(written["html"]).tables["problems"])
    assert sorted(problems["status"]) == ["skipped", "skipped", "unscored"]


def test_val_test_and_precisions_stay_apart_and_only_the_exact_setting_compares(rendered):
    _, written = rendered["splits-and-precisions"]
    page = parse_page(written["html"])
    heads = [c[0] for c in page.tables["overall"][0][1:-1]]
    assert sorted(h.rsplit(" (", 1)[0] for h in heads) == sorted([
        "aid · test · finetune · bf16", "aid · test · finetune · fp32", "aid · val · finetune · fp32",
        "isaid · val · finetune"])
    compare = as_frame(page.tables["paper-compare"])
    exact = compare[compare["match"] == "exact"].set_index("task")
    assert float(exact.loc["isaid", "paper"]) == 70.91 and float(exact.loc["isaid", "Δ"]) == pytest.approx(-0.91)
    aid = exact.loc[["aid"]]  # fp32 and bf16 each compare (the paper's precision is not a setting), never pooled
    assert set(aid["paper"]) == {"97.68"} and sorted(aid["reproduced"]) == ["96.25", "97.5"]
    near = compare[compare["match"] != "exact"]
    assert set(near["paper"]) == {NO_PAPER}
    reasons = " | ".join(near["match"])
    assert "split val (paper: test)" in reasons and "no pretrained backbone weights loaded" not in reasons
    assert "1,000 backbone parameters at initialisation" in reasons
    assert "paper_scatter" in written


def test_old_file_pools_rows_without_precision_as_fp32(rendered):
    _, written = rendered["old-file"]
    family = as_frame(parse_page(written["html"]).tables["family-classification"])
    assert list(family["n"]) == ["2"] and list(family["precision"]) == ["fp32"] and float(family["mean"][0]) == 91.0
