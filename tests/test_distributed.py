"""One evaluation on two processes (torchrun, gloo on the CPU): the parent keeps the row, the
workers split the data, and the test metrics cover every test sample exactly once."""

from __future__ import annotations

import csv

import pytest

from rsbench.errors import RsbenchError, SpecError
from rsbench.results import leaderboard
from rsbench.run import distributed
from rsbench.run.runner import run_evaluation
from rsbench.run.scoring import score_predictions
from rsbench.run.spec import RunSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_process_run(aid_root, tmp_path_factory):
    results, work = tmp_path_factory.mktemp("results"), tmp_path_factory.mktemp("work")
    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=10, nproc=2,
                   work_dir=str(work))
    return spec, results, work, run_evaluation(spec, results_dir=results, show_progress=False)


def test_two_processes_write_one_row_and_every_test_sample_once(two_process_run, aid_root, tmp_path):
    spec, results, work, outcome = two_process_run
    row = outcome.row
    assert outcome.status == "ok", row["error"]
    rows = leaderboard.read_rows(results / "leaderboard.csv")
    assert len(rows) == 1 and rows[0]["nproc"] == "2"
    assert float(rows[0]["peak_mem_mb"]) > 100  # the workers' peak, not the parent's
    with open(work / "predictions.csv", newline="") as fh:
        ids = [r["id"] for r in csv.DictReader(fh)]
    assert len(ids) == len(set(ids)) == 480  # the fixture's test split, no padding duplicates
    # The gathered predictions score back to the value the two ranks reported together.
    scored, _ = score_predictions("aid", aid_root, work / "predictions.csv", "dist", results_dir=tmp_path,
                                  work_dir=tmp_path / "score")
    assert scored["value"] == pytest.approx(row["value"])


def test_a_second_call_reuses_the_row(two_process_run):
    spec, results, _, _ = two_process_run
    assert run_evaluation(spec, results_dir=results, show_progress=False).reused


def test_a_failing_worker_fails_the_run_with_its_error(aid_root, tmp_path):
    spec = RunSpec(backbone="resnet50-tiny", task="aid", data_root=str(aid_root), max_iters=10, nproc=2,
                   lr=1e9, work_dir=str(tmp_path / "work"))
    with pytest.raises(RsbenchError, match=r"distributed run \(2 processes\) failed on rank \d: .*(finite|NaN|nan)"):
        run_evaluation(spec, results_dir=tmp_path, show_progress=False)
    (row,) = leaderboard.read_rows(tmp_path / "leaderboard.csv")
    assert row["status"] == "failed" and "failed on rank" in row["error"]


def test_configure_runs_ddp_under_the_pytorch_launcher():
    cfg = dict(env_cfg=dict(dist_cfg=dict(backend="nccl")), launcher="none")
    assert distributed.configure(cfg, 1, "cpu") is cfg
    cpu = distributed.configure(cfg, 2, "cpu")
    assert cpu["launcher"] == "pytorch" and cpu["env_cfg"]["dist_cfg"]["backend"] == "gloo"
    assert cpu["model_wrapper_cfg"]["device_ids"] is None and cpu["rsbench_nproc"] == 2
    gpu = distributed.configure(cfg, 4, "cuda")
    assert "device_ids" not in gpu["model_wrapper_cfg"] and gpu["env_cfg"]["dist_cfg"]["backend"] == "nccl"


@pytest.mark.parametrize("kwargs,message", [
    (dict(nproc=0), "--nproc 0"),
    (dict(nproc=2, track=("tensorboard",)), "--track with --nproc"),
])
def test_bad_nproc_settings_are_named(kwargs, message):
    with pytest.raises(SpecError, match=message):
        RunSpec(backbone="resnet50-tiny", task="aid", **kwargs).validate()


def test_a_rank_killed_without_a_traceback_is_named_with_its_last_output(tmp_path):
    # torchrun --tee keeps each rank's stderr under <log dir>/<run id>/attempt_<n>/<rank>/.
    for rank, text in (("0", "Iter(test) [8/8]\n"), ("1", "step 3\n\nterminate called without an active exception\n")):
        folder = tmp_path / "job_x" / "attempt_0" / rank
        folder.mkdir(parents=True)
        (folder / "stderr.log").write_text(text)
    words = distributed.last_words(tmp_path, lines=1)
    assert "rank 1's last output" in words and words.endswith("terminate called without an active exception")
    assert "step 3" not in words and "rank 0's last output" in words
    assert distributed.last_words(tmp_path / "none") == ""
