"""``rsbench report``: the page's and the Markdown's numbers equal the leaderboard CSV's, the plots
are real PNGs, partial data still renders, and the page's JavaScript runs in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rsbench.results import leaderboard
from rsbench.results.report import fmt, write_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
METRIC = {"aid": "OA", "isaid": "mIoU", "levir-cd": "F1 (change)"}
VALUES = {  # (task, backbone) -> one value per seed; families: classification, segmentation, change
    ("aid", "resnet50"): [95.1, 95.5, 94.9], ("aid", "vit-b"): [96.2, 96.0, 96.4], ("aid", "skysense"): [97.0, 97.9, 97.3],
    ("isaid", "resnet50"): [50.1, 51.0], ("isaid", "vit-b"): [55.2, 54.8],
    ("levir-cd", "resnet50"): [80.0], ("levir-cd", "vit-b"): [82.5],
}
PAPER = ("task,backbone,metric,value,split,protocol,setting,source,verified\n"
         "aid,skysense,OA,97.68,test,linear,train_ratio=0.2,re-report,no\n"
         "isaid,vit-b,mIoU,54.1,test,finetune,,original paper,yes\n"
         "isaid,resnet50,mIoU,49.0,val,finetune,,measured on val,yes\n"
         "whu-cd,skysense,IoU (change),92.0,test,finetune,,never reproduced here,yes\n")
NO_PAPER = "no paper number for this setting"
ERROR = 'Traceback <script>alert("x")</script>\n  | boom & bust'


def make_results(root: Path, fixture: bool = True, paper: str | None = PAPER) -> Path:
    """A leaderboard written the way runs write it: seeds, three families, one failed, one skipped."""
    csv = root / leaderboard.LEADERBOARD_NAME
    n = 0
    for (task, backbone), values in VALUES.items():
        for seed, value in enumerate(values):
            n += 1
            leaderboard.append_row(csv, dict(
                run_id=f"r{n}", timestamp="2024-01-01T00:00:00+00:00", backbone=backbone, task=task, dataset=task,
                split="test", protocol="linear" if task == "aid" else "finetune", metric=METRIC[task],
                metric_definition=f"{METRIC[task]} on the <test> split", value=value, seed=seed,
                config_hash=f"cfg-{task}", git_sha="abc123", versions=json.dumps({"torch": "2.3.0", "rsbench": "0.1"}),
                device="cpu", status="ok", fixture=fixture, normalization="imagenet mean/std", precision="fp32",
                checkpoint=f"{backbone}.pth", checkpoint_sha256=f"sha-{backbone}", backbone_params_loaded=1000,
                backbone_params_random=0,
                options=json.dumps({"train_ratio": 0.2}) if task == "aid" else "{}"))
    leaderboard.append_row(csv, dict(run_id="bad1", backbone="swin-b", task="aid", protocol="linear", seed=0,
                                     status="failed", error=ERROR, options="{}", fixture=fixture))
    leaderboard.append_row(csv, dict(run_id="skip1", backbone="mars", task="levir-cd", protocol="finetune", seed=0,
                                     status="skipped", error="skipped: modality", options="{}", fixture=fixture))
    if paper is not None:
        (root / "paper_results.csv").write_text(paper)
    return root


class Tables(HTMLParser):
    """Every <table id=...> as rows of (text, data-value, class); enough to read the page back."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None, str]]]] = {}
        self.body_attrs: dict[str, str | None] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body_attrs = a
        elif tag == "table":
            self._table = a.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell, self._attrs = [], a
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(("".join(self._cell).strip(), self._attrs.get("data-value"),
                                                 self._attrs.get("class") or ""))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_page(path: Path) -> Tables:
    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def as_frame(rows: list[list[tuple[str, str | None, str]]]) -> pd.DataFrame:
    header = [c[0] for c in rows[0]]
    return pd.DataFrame([[c[0] for c in r] for r in rows[1:]], columns=header)


def expected(results: Path) -> pd.DataFrame:
    """Mean, std and n straight from the CSV, independent of rsbench.results.aggregate."""
    frame = pd.read_csv(results / leaderboard.LEADERBOARD_NAME, dtype=str, keep_default_na=False)
    ok = frame[frame["status"] == "ok"].assign(value=lambda f: f["value"].astype(float))
    return ok.groupby(["task", "backbone"])["value"].agg(["mean", "std", "count"]).reset_index().fillna(0.0)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("report")
    results = make_results(root / "results")
    return results, write_report(results, root / "out")


def test_overall_table_values_equal_the_csv_and_best_is_marked(report):
    results, written = report
    page = parse_page(written["html"])
    rows = page.tables["overall"]
    header = [c[0] for c in rows[0]]
    want = expected(results)
    seen = set()
    for row in rows[1:]:
        backbone = row[0][0]
        for head, (text, value, cls) in zip(header[1:-1], row[1:-1], strict=True):
            task = head.split(" · ")[0]
            hit = want[(want["task"] == task) & (want["backbone"] == backbone)]
            if hit.empty:
                assert text == "—" and value is None
                continue
            mean, std, n = hit.iloc[0][["mean", "std", "count"]]
            assert float(value) == pytest.approx(mean, abs=1e-4)
            first = text.split("\n")[0].lstrip("★ ")
            assert first == f"{fmt(round(mean, 4))} ± {fmt(round(std, 4))}"
            assert f"n={int(n)}" in text
            column_best = want[want["task"] == task]["mean"].max()
            assert ("best" in cls) == bool(np.isclose(mean, column_best)) == text.startswith("★")
            seen.add((task, backbone))
    assert seen == set(VALUES)  # every evaluation and backbone that ran is on the page


def test_family_tables_runs_and_markdown_match_the_csv(report):
    results, written = report
    page = parse_page(written["html"])
    want = expected(results).set_index(["task", "backbone"])
    families = {k for k in page.tables if k.startswith("family-")}
    assert families == {"family-classification", "family-segmentation", "family-change"}
    for key in families:
        frame = as_frame(page.tables[key])
        for r in frame.itertuples():
            exp = want.loc[(r.task, r.backbone)]
            assert (float(r.mean), float(r.std), int(r.n)) == pytest.approx((exp["mean"], exp["std"], exp["count"]), abs=1e-4)
    runs = as_frame(page.tables["runs"]).set_index("run id")
    csv = pd.read_csv(results / leaderboard.LEADERBOARD_NAME, dtype=str, keep_default_na=False).set_index("run_id")
    ok = csv[csv["status"] == "ok"]
    assert sorted(runs.index) == sorted(ok.index)
    assert all(float(runs.loc[i, "value"]) == float(ok.loc[i, "value"]) for i in ok.index)

    md = written["markdown"].read_text()
    block = md.split("### Family: segmentation")[1].split("###")[0]
    lines = [line for line in block.splitlines() if line.startswith("| isaid")]
    cells = {re.sub(r"\*", "", line.split(" | ")[2]): line.split(" | ") for line in lines}
    for backbone in ("resnet50", "vit-b"):
        assert float(cells[backbone][8]) == pytest.approx(want.loc[("isaid", backbone), "mean"], abs=1e-4)
    assert "| **★ 97.4 ± 0.4583 (CI [" in md  # the best aid cell of the overall table


def test_provenance_problems_paper_and_escaping(report):
    _, written = report
    text = written["html"].read_text()
    page = parse_page(written["html"])
    assert 'id="fixture-banner"' in text and "Demonstration, not results" in text
    problems = as_frame(page.tables["problems"]).set_index("run id")
    assert problems.loc["bad1", "status"] == "failed" and problems.loc["skip1", "status"] == "skipped"
    assert problems.loc["bad1", "error"] == ERROR  # the full error, decoded back to its text
    assert "<script>alert" not in text and "&lt;script&gt;alert" in text
    prov = as_frame(page.tables["provenance"])
    assert set(prov["config hash"]) == {"cfg-aid", "cfg-isaid", "cfg-levir-cd"}
    assert set(prov["split"]) == {"test"} and set(prov["normalization"]) == {"imagenet mean/std"}
    assert "OA on the <test> split" in set(prov["metric definition"])
    assert "torch 2.3.0" in as_frame(page.tables["environments"])["versions"][0]
    paper = as_frame(page.tables["paper-compare"]).set_index("backbone")
    assert set(paper.index) == {"skysense", "vit-b", "resnet50"}  # fixture runs: near misses, never compared
    assert set(paper["paper"]) == {NO_PAPER} and set(paper["Δ"]) == {"—"}
    assert all("generated fixture data" in m for m in paper["match"])
    assert "split test (paper: val)" in paper.loc["resnet50", "match"]
    assert "paper_scatter" not in written  # nothing compares, so nothing to plot
    published = as_frame(page.tables["paper-all"])
    assert len(published) == 4 and (published["verified"] == "no †").sum() == 1
    assert list(published["split"]) == ["test", "test", "val", "test"]


def test_paper_numbers_compare_only_on_the_exact_setting(tmp_path):
    results = make_results(tmp_path / "res", fixture=False)
    written = write_report(results, tmp_path / "out")
    paper = as_frame(parse_page(written["html"]).tables["paper-compare"]).set_index("backbone")
    assert float(paper.loc["skysense", "paper"]) == 97.68 and paper.loc["skysense", "verified"] == "no †"
    assert float(paper.loc["vit-b", "paper"]) == 54.1 and paper.loc["vit-b", "verified"] == "yes"
    assert float(paper.loc["vit-b", "Δ"]) == pytest.approx(55.0 - 54.1, abs=1e-4)
    assert paper.loc["vit-b", "match"] == "exact" and paper.loc["skysense", "match"] == "exact"
    # a paper number measured on val is not a number for a test run
    assert paper.loc["resnet50", "paper"] == NO_PAPER and paper.loc["resnet50", "Δ"] == "—"
    assert paper.loc["resnet50", "match"] == "split test (paper: val)"
    assert "paper_scatter" in written
    family = as_frame(parse_page(written["html"]).tables["family-segmentation"]).set_index("backbone")
    assert family.loc["resnet50", "paper"] == NO_PAPER and float(family.loc["vit-b", "paper"]) == 54.1


def test_plots_are_valid_pngs_linked_from_the_page(report):
    _, written = report
    text = written["html"].read_text()
    plots = {k: v for k, v in written.items() if k not in ("html", "markdown")}
    assert {"heatmap", "ranks"} <= set(plots)
    assert len([k for k in plots if k.startswith("bars:")]) == 3
    for path in plots.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import matplotlib.image

        assert matplotlib.image.imread(path).shape[0] > 50
        assert f'src="{path.name}"' in text


def test_partial_data_renders_without_plots_it_cannot_draw(tmp_path):
    empty = write_report(tmp_path / "nothing", tmp_path / "out0")
    assert set(empty) == {"html", "markdown"} and "No successful run yet" in empty["html"].read_text()
    results = make_results(tmp_path / "res", fixture=False, paper=None)
    written = write_report(results, tmp_path / "out1")
    assert "paper_scatter" not in written and "heatmap" in written
    text = written["html"].read_text()
    assert "fixture-banner" not in text and "No reproduced number has a published number" in text
    assert "Demonstration" not in written["markdown"].read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_page_runs_in_headless_chromium_without_javascript_errors(report, tmp_path):
    _, written = report
    url = written["html"].resolve().as_uri() + "#selftest"  # the page sorts and filters every table
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]
    shot = tmp_path / "shot.png"
    run = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'p1'}", f"--screenshot={shot}",
                          "--window-size=1280,900", url], capture_output=True, text=True, timeout=60)
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG", run.stderr[-2000:]
    console_errors = [line for line in run.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert not console_errors, console_errors
    dom = subprocess.run([*flags, f"--user-data-dir={tmp_path / 'p2'}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=60)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    errors = re.search(r'<div id="js-errors">([^<]*)', dom.stdout)
    assert 'data-js-ready="ok"' in body.group(0), errors.group(1) if errors else dom.stdout[:2000]
    assert 'data-selftest="ok"' in body.group(0)
