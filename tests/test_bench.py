"""The benchmark's plumbing (``bench/``): counters, timing order, verdicts, the report and
``--only`` merging. Nothing here times anything against a threshold; the figures themselves run
through ``python -m bench``."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

# ``bench`` is a top-level folder of the repository, not an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report  # noqa: E402
from bench.__main__ import main, parse_only  # noqa: E402
from bench.common import Figure, check, combine, interleaved  # noqa: E402
from bench.figure_2_flops import count_flops, matmul_gflops  # noqa: E402
from bench.figure_7_memory import _live_bytes_mode, count  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def test_live_bytes_counts_activations_and_frees_them() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 1000))
    x = torch.randn(10, 1000, device="meta")
    mode = _live_bytes_mode()
    mode.known([*model.parameters(), x])
    with torch.inference_mode(), mode:
        y = model(x)
    one = 10 * 1000 * 4
    assert mode.peak == 2 * one  # the ReLU output and the second Linear's output are live together
    assert mode.live == one  # only y is left
    del y
    assert mode.live == 0


def test_live_bytes_answers_boolean_data_checks_and_refuses_other_reads() -> None:
    x = torch.ones(3, device="meta")
    mode = _live_bytes_mode()
    with mode:
        assert not bool(x.min() < 0)
        with pytest.raises(RuntimeError, match="branches on data"):
            x.sum().item()
    assert mode.answered == 1


def test_count_of_a_registered_tiny_backbone_adds_parameters_and_activations() -> None:
    from rsbench import get_catalog
    info = get_catalog().backbone("resnet50-tiny")
    row = count("resnet50-tiny", 64)
    assert row["input"] == "1x3x64x64" and row["answered"] == 0
    assert row["params_mib"] * 2**20 >= info.params * 4  # parameters (plus BN buffers) in fp32
    assert row["activations_mib"] > 0
    assert row["counted_mib"] > row["params_mib"] + row["activations_mib"]  # plus the input


def test_flop_count_of_a_linear_layer() -> None:
    layer = nn.Linear(64, 32, bias=False)
    assert count_flops(lambda: layer(torch.randn(8, 64))) == 2 * 8 * 64 * 32


def test_matmul_probe_reports_its_size_and_rate() -> None:
    out = matmul_gflops("float32", n=128, seconds=0.01, min_calls=2)
    assert out["n"] == 128 and out["calls"] >= 2 and out["gflops"] > 0 and out["best_gflops"] >= out["gflops"]


def test_interleaved_alternates_the_sides_after_warmup() -> None:
    calls: list[str] = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2, warmup=1)
    assert calls == ["a", "b"] * 3
    assert [len(v) for v in times.values()] == [2, 2]


def test_verdicts_never_pass_a_miss() -> None:
    assert check(1.05, "<=", 1.05) == "met" and check(1.06, "<=", 1.05) == "not met"
    assert check(0.5, ">=", 0.5) == "met" and check(0.49, ">=", 0.5) == "not met"
    assert combine(["met", "not met"]) == "not met"
    assert combine(["met", "not measured"]) == "met (partly measured)"
    assert combine(["not measured"]) == "not measured"


def test_report_lists_every_figure_with_its_verdict() -> None:
    figs = [Figure(1, "One", "<= 1.05x", headline="1.20x", verdict="not met", columns=["a", "b"],
                   rows=[{"a": "x|y", "b": 0.123456}], notes=["a note"]),
            Figure(2, "Two", ">= 50%", verdict="not measured", notes=["why"])]
    text = report.render(figs, {"CPU": "test"}, {"torch": "2"}, "python -m bench", report.now(), 60.0,
                         {"start": 1.0, "end": 2.0}, "abc")
    assert "| 1. One | 1.20x | <= 1.05x | not met |" in text
    assert "| 2. Two |  | >= 50% | not measured |" in text
    assert "**Verdict: not met** (1.20x)." in text
    assert "| x\\|y | 0.1235 |" in text  # pipes escaped, floats to 4 significant digits
    assert "- why" in text and "| CPU | test |" in text


def test_parse_only() -> None:
    assert parse_only(None) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert parse_only("5,1,5") == [1, 5]
    for bad in ("9", "x", ","):
        with pytest.raises(SystemExit):
            parse_only(bad)


def test_only_replaces_some_figures_and_keeps_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.__main__ as entry

    def fake(number: int, verdict: str) -> types.ModuleType:
        module = types.ModuleType(f"fake_figure_{number}")
        module.run = lambda ctx: Figure(number, f"fake {number}", "goal", headline=verdict, verdict=verdict)
        return module

    out = tmp_path / "RESULTS.md"
    for n, verdict in ((1, "met"), (2, "not met")):
        monkeypatch.setitem(sys.modules, f"fake_figure_{n}", fake(n, verdict))
    monkeypatch.setattr(entry, "FIGURES", {1: "fake_figure_1", 2: "fake_figure_2"})
    assert main(["--only", "1,2", "--out", str(out)]) == 0
    monkeypatch.setitem(sys.modules, "fake_figure_2", fake(2, "met"))
    assert main(["--only", "2", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| 1. fake 1 | met | goal | met |" in text  # kept from the first call
    assert "| 2. fake 2 | met | goal | met |" in text  # replaced by the second
    assert "figure(s) 1 are kept from an earlier run" in text
    assert f"`python -m bench --only 1,2 --out {out}` at " in text and "(figures 1 kept)" in text
    assert out.with_suffix(".json").exists()


def test_a_failing_figure_becomes_a_not_measured_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.__main__ as entry

    module = types.ModuleType("broken_figure")

    def boom(ctx: object) -> Figure:
        raise ValueError("no data")

    module.run = boom
    monkeypatch.setitem(sys.modules, "broken_figure", module)
    monkeypatch.setattr(entry, "FIGURES", {3: "broken_figure"})
    main(["--only", "3", "--out", str(tmp_path / "R.md")])
    text = (tmp_path / "R.md").read_text()
    assert "| 3. Feature cache | failed: ValueError | see the figure's module | not measured |" in text
    assert "The figure failed: ValueError: no data" in text
