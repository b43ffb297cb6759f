"""Every stage output name lives in stages/outputs.py; dvc.yaml must declare exactly those."""

from __future__ import annotations

import yaml

from delift_dvc.stages import outputs
from tests.helpers.projects import REPO


def declared() -> dict[str, dict[str, set[str]]]:
    """stage -> {"outs" | "metrics" | "plots": set of declared paths}."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        out[name] = {kind: {next(iter(e)) if isinstance(e, dict) else e for e in stage.get(kind, [])}
                     for kind in ("outs", "metrics", "plots")}
    return out


def test_every_metrics_file_is_its_stages_declared_metric():
    stages = declared()
    for stage, name in outputs.METRICS.items():
        live = {f"${{metrics}}/{outputs.LIVE_METRICS}"} if stage == "finetune" else set()
        assert stages[stage]["metrics"] == {f"${{metrics}}/{name}"} | live, stage


def test_every_plot_is_declared_by_exactly_one_stage():
    stages = declared()
    for name in outputs.PLOTS.values():
        owners = [s for s, kinds in stages.items() if f"${{plots}}/{name}" in kinds["plots"]]
        assert len(owners) == 1, (name, owners)
    every_plot = set().union(*(kinds["plots"] for kinds in stages.values()))
    live_loss = f"${{metrics}}/{outputs.LIVE_LOSS}"
    assert every_plot == {f"${{plots}}/{name}" for name in outputs.PLOTS.values()} | {live_loss}
    assert live_loss in stages["finetune"]["plots"]
    assert f"${{plots}}/{outputs.TRAIN_LOSS}" in stages["finetune"]["outs"]  # a file for scripts, no plot


def test_data_outputs_match_the_stage_that_writes_them():
    stages = declared()
    assert f"${{data.selected}}/{outputs.SELECTION_RECORD}" in stages["score"]["outs"]
    assert f"${{data.selected}}/{outputs.SELECTED_TRAIN}" in stages["select"]["outs"]
    assert f"${{metrics}}/{outputs.GENERATIONS}" in stages["evaluate"]["outs"]
    assert "${data.prepared}" in stages["ingest"]["outs"]
    test_dep = f"${{data.prepared}}/{outputs.PREPARED_TEST}"
    assert test_dep in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["evaluate"]["deps"]
