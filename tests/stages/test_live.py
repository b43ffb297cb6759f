"""The finetune stage's live log through DVCLive: the files DVC declares, the same bytes on
every run, and a declared plot even when no step ran."""

from __future__ import annotations

import json

from delift_dvc.stages.finetune import live_loss
from delift_dvc.stages.outputs import LIVE_LOSS, LIVE_METRICS


def run(metrics_dir, losses):
    with live_loss(metrics_dir) as on_step:
        for k, loss in enumerate(losses):
            on_step(k + 1, loss)
    return {name: (metrics_dir / name).read_bytes() for name in (LIVE_METRICS, LIVE_LOSS)}


def test_every_step_is_a_row_and_the_summary_is_the_last(tmp_path):
    files = run(tmp_path, [2.5, 1.25, 0.6251234567])
    assert files[LIVE_LOSS].decode().splitlines() == ["step\tloss", "1\t2.5", "2\t1.25", "3\t0.625123"]
    assert json.loads(files[LIVE_METRICS]) == {"train": {"loss": 0.625123}, "step": 3}


def test_two_runs_write_the_same_bytes(tmp_path):
    assert run(tmp_path / "a", [1.0, 0.5]) == run(tmp_path / "b", [1.0, 0.5])
    again = run(tmp_path / "a", [3.0])  # a rerun replaces the previous run's history
    assert again[LIVE_LOSS].decode().splitlines() == ["step\tloss", "1\t3.0"]


def test_no_step_leaves_the_header_so_the_declared_plot_exists(tmp_path):
    with live_loss(tmp_path):
        pass
    assert (tmp_path / LIVE_LOSS).read_text() == "step\tloss\n"
